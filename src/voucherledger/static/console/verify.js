// Verifying a jsonl export in the browser: a second implementation of the offline
// verifier (`voucherledger verify FILE.jsonl --public-key KEY`, ledger/verify.py),
// written from docs/ledger-format.md. The file is read where it is, with
// File.stream() and a TextDecoder, one line at a time: nothing is uploaded and a
// large file is never held whole. Hashes are SHA-256 and signatures Ed25519, both
// through WebCrypto (crypto.subtle); no eval, no inline script (the page's CSP).
//
// To give the same verdict at the same line as the Python verifier, the lines are
// parsed as Python's json.loads parses them (integers exact as BigInt, floats kept
// as floats, so "1.0" is not "1"), compared as Python compares them (1 == 1.0 ==
// true), and the canonical bytes are those of json.dumps(sort_keys=True,
// separators=(",", ":"), ensure_ascii=False). Lines are split as Python's text
// files split them (LF, CRLF or CR); blank lines are skipped.
(function () {
  "use strict";

  var GENESIS = "0000000000000000000000000000000000000000000000000000000000000000";
  var MANIFEST_FORMAT = "voucherledger-export-v1";
  var KEY_FORMAT = "voucherledger-signing-key-v1";
  var NOT_CHAINED = ["type", "prev_hash", "hash", "block_height"];
  // As ledger/verify.py (MAX_DEPTH and parse_line): a line nested deeper is refused, and
  // NaN, infinities and lone surrogates, which have no canonical form, at once.
  var MAX_DEPTH = 200;
  var NO_NAN = "a value has no canonical form (NaN)";
  var NO_INFINITY = "a value has no canonical form (infinity)";

  // --- values as Python holds them -------------------------------------------------

  function PyFloat(value) { this.value = value; }

  function Fault(reason, kind) {
    this.reason = reason;
    this.kind = kind || "other";
  }

  function isInt(v) { return typeof v === "bigint" || typeof v === "boolean"; }
  function isNumber(v) { return isInt(v) || v instanceof PyFloat; }
  function isObject(v) {
    return v !== null && typeof v === "object" && !Array.isArray(v) && !(v instanceof PyFloat);
  }
  function asBig(v) { return typeof v === "boolean" ? (v ? 1n : 0n) : v; }

  // Python's a == b for the values json.loads makes.
  function pyEq(a, b) {
    if (isNumber(a) && isNumber(b)) { return numCompare(a, b) === 0; }
    if (a === null || b === null) { return a === b; }
    if (typeof a === "string" || typeof b === "string") { return a === b; }
    if (Array.isArray(a) || Array.isArray(b)) {
      if (!Array.isArray(a) || !Array.isArray(b) || a.length !== b.length) { return false; }
      for (var i = 0; i < a.length; i++) { if (!pyEq(a[i], b[i])) { return false; } }
      return true;
    }
    if (isObject(a) && isObject(b)) {
      var ka = Object.keys(a);
      var kb = Object.keys(b);
      if (ka.length !== kb.length) { return false; }
      for (var j = 0; j < ka.length; j++) {
        if (!Object.prototype.hasOwnProperty.call(b, ka[j]) || !pyEq(a[ka[j]], b[ka[j]])) { return false; }
      }
      return true;
    }
    return false;
  }

  // -1, 0, 1 or NaN (a float NaN compares with nothing).
  function numCompare(a, b) {
    if (isInt(a) && isInt(b)) {
      var x = asBig(a);
      var y = asBig(b);
      return x < y ? -1 : x > y ? 1 : 0;
    }
    var fa = a instanceof PyFloat ? a.value : null;
    var fb = b instanceof PyFloat ? b.value : null;
    if (fa !== null && fb !== null) { return fa < fb ? -1 : fa > fb ? 1 : fa === fb ? 0 : NaN; }
    // An int against a float, exactly (as Python does).
    var f = fa !== null ? fa : fb;
    var n = asBig(fa !== null ? b : a);
    var sign = fa !== null ? -1 : 1;  // the result is of (int, float); flip for (float, int)
    var r;
    if (isNaN(f)) { return NaN; }
    if (f === Infinity) { r = -1; } else if (f === -Infinity) { r = 1; } else {
      var whole = Math.floor(f);
      var bw = BigInt(whole);
      if (n < bw) { r = -1; } else if (n > bw) { r = 1; } else { r = whole === f ? 0 : -1; }
    }
    return r * sign;
  }

  function isPySpace(ch) {
    return /^[\t\n\x0b\x0c\r\x1c-\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]$/.test(ch);
  }

  function blank(text) {
    for (var i = 0; i < text.length; i++) { if (!isPySpace(text[i])) { return false; } }
    return true;
  }

  // str(value) and repr(value) as Python writes them, for the messages.
  function pyStr(v) {
    if (v === null || v === undefined) { return "None"; }
    if (typeof v === "boolean") { return v ? "True" : "False"; }
    if (typeof v === "string") { return v; }
    if (typeof v === "bigint") { return v.toString(); }
    if (v instanceof PyFloat) { return floatRepr(v.value, true); }
    return canonicalText(v);
  }
  function pyRepr(v) {
    if (typeof v === "string") { return "'" + v.replace(/\\/g, "\\\\").replace(/'/g, "\\'") + "'"; }
    return pyStr(v);
  }

  // --- json.loads ------------------------------------------------------------------

  function parseLine(text) {
    var i = 0;
    var n = text.length;
    function fail() { throw new Fault("not a JSON line", "json"); }
    function ws() {
      while (i < n) {
        var c = text.charCodeAt(i);
        if (c === 32 || c === 9 || c === 10 || c === 13) { i++; } else { break; }
      }
    }
    function value() {
      if (i >= n) { fail(); }
      var c = text[i];
      if (c === "{") { return object(); }
      if (c === "[") { return array(); }
      if (c === "\"") { return string(); }
      if (text.startsWith("null", i)) { i += 4; return null; }
      if (text.startsWith("true", i)) { i += 4; return true; }
      if (text.startsWith("false", i)) { i += 5; return false; }
      if (text.startsWith("NaN", i)) { throw new Fault(NO_NAN, "json"); }
      if (text.startsWith("Infinity", i) || text.startsWith("-Infinity", i)) { throw new Fault(NO_INFINITY, "json"); }
      return number();
    }
    function number() {
      var m = /-?(?:0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)?/y;
      m.lastIndex = i;
      var found = m.exec(text);
      if (!found) { fail(); }
      i += found[0].length;
      if (found[1] || found[2]) {
        var f = Number(found[0]);
        if (!isFinite(f)) { throw new Fault(NO_INFINITY, "json"); }  // 1e400
        return new PyFloat(f);
      }
      if (found[0].replace("-", "").length > 4300) { fail(); }  // Python's int limit
      return BigInt(found[0]);
    }
    function string() {
      i++;
      var out = "";
      var start = i;
      for (;;) {
        if (i >= n) { fail(); }
        var c = text.charCodeAt(i);
        if (c === 34) { out += text.slice(start, i); i++; return out; }
        if (c < 32) { fail(); }
        if (c === 92) {
          out += text.slice(start, i);
          var e = text[i + 1];
          i += 2;
          if (e === "u") {
            var code = hex4(i);
            i += 4;
            if (code >= 0xd800 && code <= 0xdbff && text[i] === "\\" && text[i + 1] === "u") {
              var low = hex4(i + 2);
              if (low >= 0xdc00 && low <= 0xdfff) {
                i += 6;
                out += String.fromCharCode(code, low);
                start = i;
                continue;
              }
            }
            out += String.fromCharCode(code);
          } else {
            var map = { "\"": "\"", "\\": "\\", "/": "/", b: "\b", f: "\f", n: "\n", r: "\r", t: "\t" };
            if (e === undefined || !Object.prototype.hasOwnProperty.call(map, e)) { fail(); }
            out += map[e];
          }
          start = i;
          continue;
        }
        i++;
      }
    }
    function hex4(at) {
      var h = text.slice(at, at + 4);
      if (!/^[0-9a-fA-F]{4}$/.test(h)) { fail(); }
      return parseInt(h, 16);
    }
    var depth = 0;
    function deeper() {
      depth += 1;
      if (depth > MAX_DEPTH) { throw new Fault("nested more than " + MAX_DEPTH + " levels deep", "json"); }
    }
    function object() {
      i++;
      deeper();
      var out = Object.create(null);
      ws();
      if (text[i] === "}") { i++; depth -= 1; return out; }
      for (;;) {
        ws();
        if (text[i] !== "\"") { fail(); }
        var key = string();
        ws();
        if (text[i] !== ":") { fail(); }
        i++;
        ws();
        out[key] = value();
        ws();
        if (text[i] === ",") { i++; continue; }
        if (text[i] === "}") { i++; depth -= 1; return out; }
        fail();
      }
    }
    function array() {
      i++;
      deeper();
      var out = [];
      ws();
      if (text[i] === "]") { i++; depth -= 1; return out; }
      for (;;) {
        ws();
        out.push(value());
        ws();
        if (text[i] === ",") { i++; continue; }
        if (text[i] === "]") { i++; depth -= 1; return out; }
        fail();
      }
    }
    if (text.charCodeAt(0) === 0xfeff) { fail(); }  // json.loads refuses a BOM
    ws();
    var result = value();
    ws();
    if (i !== n) { fail(); }
    if (/\\u[dD][89a-fA-F]/.test(text) && loneSurrogate(result)) {
      throw new Fault("a value has no canonical form (a lone surrogate)", "json");
    }
    return result;
  }

  // A string holding a lone surrogate ("\ud800"), which UTF-8 cannot encode.
  function loneSurrogate(v) {
    if (typeof v === "string") { return /[\ud800-\udfff]/u.test(v); }
    if (Array.isArray(v)) { return v.some(loneSurrogate); }
    if (isObject(v)) {
      return Object.keys(v).some(function (k) { return loneSurrogate(k) || loneSurrogate(v[k]); });
    }
    return false;
  }

  // --- canonical bytes -------------------------------------------------------------

  function floatRepr(x, forStr) {
    if (isNaN(x)) { if (forStr) { return "nan"; } throw new Fault("chain: a value has no canonical form (NaN)"); }
    if (!isFinite(x)) {
      if (forStr) { return x > 0 ? "inf" : "-inf"; }
      throw new Fault("chain: a value has no canonical form (infinity)");
    }
    var negative = x < 0 || Object.is(x, -0);
    var parts = Math.abs(x).toExponential().split("e");
    var digits = parts[0].replace(".", "");
    var exp = parseInt(parts[1], 10);
    var out;
    if (exp >= -5 + 1 && exp < 16) {
      if (exp < 0) {
        out = "0." + "0".repeat(-exp - 1) + digits;
      } else if (digits.length <= exp + 1) {
        out = digits + "0".repeat(exp + 1 - digits.length) + ".0";
      } else {
        out = digits.slice(0, exp + 1) + "." + digits.slice(exp + 1);
      }
    } else {
      var mantissa = digits.length > 1 ? digits[0] + "." + digits.slice(1) : digits;
      var e = Math.abs(exp);
      out = mantissa + "e" + (exp < 0 ? "-" : "+") + (e < 10 ? "0" : "") + e;
    }
    return (negative ? "-" : "") + out;
  }

  function quote(s) {
    return "\"" + s.replace(/[\x00-\x1f"\\]/g, function (c) {
      switch (c) {
        case "\"": return "\\\"";
        case "\\": return "\\\\";
        case "\n": return "\\n";
        case "\r": return "\\r";
        case "\t": return "\\t";
        case "\b": return "\\b";
        case "\f": return "\\f";
        default: return "\\u" + c.charCodeAt(0).toString(16).padStart(4, "0");
      }
    }) + "\"";
  }

  // Keys in code point order, as Python sorts str (not UTF-16 units, as JS does).
  function byCodePoint(a, b) {
    var ia = 0;
    var ib = 0;
    while (ia < a.length && ib < b.length) {
      var ca = a.codePointAt(ia);
      var cb = b.codePointAt(ib);
      if (ca !== cb) { return ca - cb; }
      ia += ca > 0xffff ? 2 : 1;
      ib += cb > 0xffff ? 2 : 1;
    }
    return (a.length - ia) - (b.length - ib);
  }

  function canonicalText(v) {
    if (v === null) { return "null"; }
    if (v === true) { return "true"; }
    if (v === false) { return "false"; }
    if (typeof v === "bigint") { return v.toString(); }
    if (v instanceof PyFloat) { return floatRepr(v.value, false); }
    if (typeof v === "string") { return quote(v); }
    if (Array.isArray(v)) { return "[" + v.map(canonicalText).join(",") + "]"; }
    var keys = Object.keys(v).sort(byCodePoint);
    return "{" + keys.map(function (k) { return quote(k) + ":" + canonicalText(v[k]); }).join(",") + "}";
  }

  var encoder = new TextEncoder();
  function canonical(v) { return encoder.encode(canonicalText(v)); }

  function without(obj, names) {
    var out = Object.create(null);
    Object.keys(obj).forEach(function (k) { if (names.indexOf(k) < 0) { out[k] = obj[k]; } });
    return out;
  }
  function get(obj, name) {
    return Object.prototype.hasOwnProperty.call(obj, name) ? obj[name] : null;
  }

  // --- hashes and signatures -------------------------------------------------------

  // bytes.fromhex: pairs of hex digits, ASCII white space allowed between them; null if not.
  function fromHex(text) {
    var out = [];
    var i = 0;
    while (i < text.length) {
      if (/[ \t\n\x0b\x0c\r]/.test(text[i])) { i++; continue; }
      var pair = text.slice(i, i + 2);
      if (!/^[0-9a-fA-F]{2}$/.test(pair)) { return null; }
      out.push(parseInt(pair, 16));
      i += 2;
    }
    return new Uint8Array(out);
  }

  function toHex(buffer) {
    return Array.from(new Uint8Array(buffer), function (b) { return b.toString(16).padStart(2, "0"); }).join("");
  }

  async function chainHash(prevHash, bytes) {
    var prev = fromHex(prevHash);
    if (prev === null) { throw new Fault("the previous hash is not hexadecimal", "hash"); }
    var joined = new Uint8Array(prev.length + bytes.length);
    joined.set(prev, 0);
    joined.set(bytes, prev.length);
    return toHex(await crypto.subtle.digest("SHA-256", joined));
  }

  var keyCache = new Map();
  async function verifySignature(publicKeyHex, message, signatureHex) {
    var raw = fromHex(publicKeyHex);
    var signature = fromHex(signatureHex);
    if (raw === null || signature === null || raw.length !== 32 || signature.length !== 64) { return false; }
    var id = toHex(raw);
    try {
      if (!keyCache.has(id)) {
        keyCache.set(id, await crypto.subtle.importKey("raw", raw, { name: "Ed25519" }, false, ["verify"]));
      }
      return await crypto.subtle.verify({ name: "Ed25519" }, keyCache.get(id), signature, message);
    } catch (e) {
      return false;
    }
  }

  // --- the signing key history (ledger/keys.py) -------------------------------------

  function keyRecord(entry) {
    var position = get(entry, "position");
    var firstHeight = get(entry, "first_height");
    var publicKey = get(entry, "public_key");
    if (!isInt(position) || !isInt(firstHeight) || typeof publicKey !== "string") {
      throw new Fault("the manifest's signing_keys: a signing key entry needs position, public_key and first_height", "manifest");
    }
    var endorsement = get(entry, "endorsement");
    var reason = get(entry, "unendorsed_reason");
    return {
      position: position,
      publicKey: publicKey,
      firstHeight: firstHeight,
      endorsement: typeof endorsement === "string" ? endorsement : null,
      reason: typeof reason === "string" ? reason : null
    };
  }

  async function historyFault(history) {
    var previous = null;
    for (var index = 1; index <= history.length; index++) {
      var record = history[index - 1];
      if (!pyEq(record.position, BigInt(index))) {
        return "the signing key history has entry " + pyStr(record.position) + " where " + index + " belongs";
      }
      if (previous === null) {
        if (!pyEq(record.firstHeight, 1n)) {
          return "the first signing key starts at block " + pyStr(record.firstHeight) + ", not 1";
        }
      } else {
        if (numCompare(record.firstHeight, previous.firstHeight) < 0) {
          return "signing key " + record.publicKey + " starts before the key it replaces";
        }
        if (record.endorsement !== null) {
          var message = canonical({
            format: KEY_FORMAT,
            public_key: record.publicKey,
            previous_public_key: previous.publicKey,
            first_height: record.firstHeight
          });
          if (!(await verifySignature(previous.publicKey, message, record.endorsement))) {
            return "signing key " + record.publicKey + " carries an endorsement that " + previous.publicKey + " did not sign";
          }
        } else if (!record.reason) {
          return "signing key " + record.publicKey + " is neither endorsed nor explained";
        }
      }
      previous = record;
    }
    return null;
  }

  function keyForHeight(history, height) {
    var found = null;
    history.forEach(function (record) { if (numCompare(record.firstHeight, height) <= 0) { found = record; } });
    return found;
  }

  function checkBlockKey(history, height, publicKey) {
    var expected = keyForHeight(history, height);
    if (expected !== null && expected.publicKey === publicKey) { return; }
    if (!history.some(function (r) { return r.publicKey === publicKey; })) {
      throw new Fault("block " + pyStr(height) + " is signed by key " + publicKey + ", not in the key history", "key");
    }
    throw new Fault("block " + pyStr(height) + " is signed by key " + publicKey + ", but the key history names " +
      (expected ? expected.publicKey : "no key") + " for it", "key");
  }

  // --- the verifier (ledger/verify.py: ChainVerifier and verify_lines) --------------

  function where(sequence, txnId) {
    var parts = [];
    if (sequence !== null && sequence !== undefined) { parts.push("sequence " + pyStr(sequence)); }
    if (txnId !== null && txnId !== undefined) { parts.push("transaction " + txnId); }
    return parts.join(", ") || "chain";
  }

  function broken(reason, kind, sequence, txnId) {
    return new Fault(where(sequence, txnId) + ": " + reason, kind);
  }

  function Verifier(trusted) {
    this.sequence = 0n;
    this.hash = GENESIS;
    this.trusted = trusted.length ? trusted : null;
    this.shown = 0;
    this.redacted = 0;
    this.totals = new Map();
    this.signed = [];  // [height, public key] of each block
    this.manifest = null;
    this.history = null;
  }

  // self.sequence + 1, as Python adds (a redacted line may have left a float or a bool).
  Verifier.prototype.next = function () {
    var s = this.sequence;
    return s instanceof PyFloat ? new PyFloat(s.value + 1) : asBig(s) + 1n;
  };

  Verifier.prototype.transaction = async function (line) {
    var storedHash = get(line, "hash");
    var record = without(line, NOT_CHAINED);
    var sequence = get(record, "sequence");
    var id = get(record, "id");
    var txnId = typeof id === "string" ? id : null;
    if (!isNumber(sequence) || !pyEq(sequence, this.next())) {
      throw broken("expected sequence " + pyStr(this.next()) + ", found " + pyStr(sequence), "sequence",
        isInt(sequence) ? sequence : null, txnId);
    }
    var newHash = await chainHash(this.hash, canonical(record));
    if (storedHash !== null && !pyEq(storedHash, newHash)) {
      throw broken("content does not match its seal hash", "hash", sequence, txnId);
    }
    this.sequence = sequence;
    this.hash = newHash;
    this.shown += 1;
    var postings = get(record, "postings");
    var totals = this.totals;
    (Array.isArray(postings) ? postings : []).forEach(function (leg) {
      var amount = isObject(leg) ? get(leg, "amount") : null;
      if (isInt(amount) && asBig(amount) > 0n) {
        var currency = pyStr(get(leg, "currency"));
        totals.set(currency, (totals.get(currency) || 0n) + asBig(amount));
      }
    });
  };

  Verifier.prototype.redactedLine = function (line) {
    var sequence = get(line, "sequence");
    var prevHash = get(line, "prev_hash");
    var storedHash = get(line, "hash");
    if (!isNumber(sequence) || !pyEq(sequence, this.next())) {
      throw broken("expected sequence " + pyStr(this.next()) + ", found " + pyStr(sequence), "sequence",
        isInt(sequence) ? sequence : null, null);
    }
    if (!pyEq(prevHash, this.hash)) {
      throw broken("does not follow on from the previous hash", "hash", sequence, null);
    }
    if (typeof storedHash !== "string" || !/^[0-9a-fA-F]{64}$/.test(storedHash)) {
      throw broken("has no valid hash", "hash", sequence, null);
    }
    this.sequence = sequence;
    this.hash = storedHash;
    this.redacted += 1;
  };

  Verifier.prototype.block = async function (line) {
    var block = without(line, ["type", "signature", "public_key"]);
    var publicKey = pyStr(get(line, "public_key"));
    var height = get(block, "height");
    if (!isInt(height)) { throw new Fault("chain: the block has no integer height", "block"); }
    if (!pyEq(get(block, "last_sequence"), this.sequence) || !pyEq(get(block, "hash"), this.hash)) {
      throw broken("block " + pyStr(height) + " does not end at the recomputed head", "block", this.sequence, null);
    }
    if (this.trusted !== null && this.trusted.indexOf(publicKey) < 0) {
      throw new Fault("chain: block " + pyStr(height) + " is signed by an unexpected key " + publicKey +
        " (not among the trusted public keys)", "key");
    }
    if (!(await verifySignature(publicKey, canonical(block), pyStr(get(line, "signature"))))) {
      throw new Fault("chain: block " + pyStr(height) + " has an invalid signature", "signature");
    }
    this.signed.push([height, publicKey]);
  };

  Verifier.prototype.manifestLine = async function (line) {
    this.manifest = line;
    var signer = pyStr(get(line, "public_key"));
    if (this.trusted !== null && this.trusted.indexOf(signer) < 0) {
      throw new Fault("chain: the manifest is signed by an unexpected key " + signer +
        " (not among the trusted public keys)", "key");
    }
    if (!(await verifySignature(signer, canonical(without(line, ["signature"])), pyStr(get(line, "signature"))))) {
      throw new Fault("chain: the manifest's signature is invalid", "manifest");
    }
    if (!pyEq(get(line, "format"), MANIFEST_FORMAT)) {
      throw new Fault("chain: unknown export format", "manifest");
    }
    if (!pyEq(get(line, "transactions"), BigInt(this.shown))) {
      throw new Fault("chain: the manifest lists " + pyStr(get(line, "transactions")) + " transactions, the file has " +
        this.shown, "manifest");
    }
    var totals = Object.create(null);
    this.totals.forEach(function (value, currency) { totals[currency] = value; });
    if (!pyEq(get(line, "credits_by_currency"), totals)) {
      throw new Fault("chain: the manifest's totals differ from the file's", "manifest");
    }
    if (!pyEq(get(line, "last_sequence"), this.sequence) || !pyEq(get(line, "head_hash"), this.hash)) {
      throw new Fault("chain: the manifest's head differs from the file's", "manifest");
    }
    var raw = get(line, "signing_keys");
    if (raw === null) { return; }
    if (!Array.isArray(raw) || !raw.every(isObject)) {
      throw new Fault("chain: the manifest's signing_keys is not a list of keys", "manifest");
    }
    var history;
    try {
      history = raw.map(keyRecord);
    } catch (e) {
      if (e instanceof Fault) { e.reason = "chain: " + e.reason; }
      throw e;
    }
    var fault = await historyFault(history);
    if (fault !== null) { throw new Fault("chain: " + fault, "key"); }
    this.history = history;
    this.signed.forEach(function (signed) {
      try { checkBlockKey(history, signed[0], signed[1]); } catch (e) {
        if (e instanceof Fault) { e.reason = "chain: " + e.reason; }
        throw e;
      }
    });
  };

  Verifier.prototype.line = async function (text) {
    if (this.manifest !== null) { throw new Fault("chain: content after the manifest", "manifest"); }
    var line;
    try {
      line = parseLine(text);
    } catch (e) {
      if (e instanceof Fault) { e.reason = "chain: " + e.reason; }
      throw e;
    }
    if (!isObject(line)) { throw new Fault("chain: not a JSON object", "json"); }
    var kind = get(line, "type");
    if (kind === "transaction") { return this.transaction(line); }
    if (kind === "redacted") { return this.redactedLine(line); }
    if (kind === "block") { return this.block(line); }
    if (kind === "manifest") { return this.manifestLine(line); }
    throw new Fault("chain: unknown line type " + pyRepr(kind), "json");
  };

  // --- reading the file ------------------------------------------------------------

  // Lines as Python's text files give them: split after LF, CRLF or a lone CR;
  // a last piece with no line end is a line unless it is empty. Each is handed over
  // as bytes, for the caller to decode: a byte that is not UTF-8 is then refused at
  // its own line, as the offline verifier does (it reads with errors="surrogateescape").
  // LF and CR bytes are never part of a UTF-8 sequence, so splitting bytes is safe.
  async function eachLine(file, onLine, onProgress) {
    var reader = file.stream().getReader();
    var pending = new Uint8Array(0);
    var read = 0;
    for (;;) {
      var step = await reader.read();
      var buffer = pending;
      if (!step.done) {
        read += step.value.length;
        buffer = new Uint8Array(pending.length + step.value.length);
        buffer.set(pending, 0);
        buffer.set(step.value, pending.length);
      }
      var start = 0;
      for (var i = 0; i < buffer.length; i++) {
        var b = buffer[i];
        if (b !== 10 && b !== 13) { continue; }
        // A CR at the end of what is read so far may be the start of a CRLF.
        if (b === 13 && i === buffer.length - 1 && !step.done) { break; }
        await onLine(buffer.subarray(start, i));
        if (b === 13 && buffer[i + 1] === 10) { i += 1; }
        start = i + 1;
      }
      pending = buffer.slice(start);
      if (step.done) {
        if (pending.length) { await onLine(pending); }
        return;
      }
      onProgress(read);
    }
  }

  async function verifyFile(file, trusted, onProgress) {
    var verifier = new Verifier(trusted);
    var decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
    var number = 0;
    var result = { ok: false, line: null, reason: "", kind: "", verifier: verifier };
    try {
      await eachLine(file, async function (bytes) {
        number += 1;
        var text;
        try {
          text = decoder.decode(bytes);
        } catch (e) {
          throw new Fault("chain: the file is not UTF-8 text", "json");
        }
        if (!text || blank(text)) { return; }
        await verifier.line(text);
      }, onProgress);
      if (verifier.manifest === null) { throw new Fault("chain: no manifest: the file is truncated", "truncated"); }
      result.ok = true;
    } catch (e) {
      if (!(e instanceof Fault)) { throw e; }
      result.line = number;
      result.reason = e.reason;
      result.kind = e.kind;
    }
    result.lines = number;
    return result;
  }

  // --- the page --------------------------------------------------------------------

  function keyRanges(verifier) {
    var runs = [];
    verifier.signed.forEach(function (signed) {
      var last = runs[runs.length - 1];
      if (last && last.key === signed[1]) { last.to = signed[0]; } else {
        runs.push({ key: signed[1], from: signed[0], to: signed[0] });
      }
    });
    return runs;
  }

  function fill(template, values) {
    return template.replace(/\{(\w+)\}/g, function (all, name) {
      return Object.prototype.hasOwnProperty.call(values, name) ? String(values[name]) : all;
    });
  }

  function setText(root, name, value) {
    var el = root.querySelector("[data-out='" + name + "']");
    if (el) { el.textContent = value; }
  }

  function start(tool) {
    var input = document.getElementById("f-export");
    var keyField = document.getElementById("f-public_key");
    var button = document.getElementById("verify-button");
    var progress = document.getElementById("verify-progress");
    var progressText = document.getElementById("verify-progress-text");
    var out = document.getElementById("verify-result");
    var msg = function (name) { return tool.getAttribute("data-msg-" + name) || ""; };

    if (!window.isSecureContext || !window.crypto || !crypto.subtle) {
      out.hidden = false;
      out.querySelector("[data-out='verdict']").textContent = msg("no-crypto");
      return;
    }
    tool.hidden = false;
    // The live region is there from the start, so each verdict is announced.
    out.hidden = false;
    var runs = 0;

    button.addEventListener("click", async function () {
      var file = input.files && input.files[0];
      out.removeAttribute("data-verdict");
      out.removeAttribute("data-line");
      out.querySelectorAll("[data-out]").forEach(function (el) { el.textContent = ""; });
      out.querySelectorAll("[data-part]").forEach(function (el) { el.hidden = true; });
      if (!file) {
        setText(out, "verdict", msg("no-file"));
        input.focus();
        return;
      }
      var trusted = keyField.value.split(/[\s,]+/).filter(Boolean).map(function (k) { return k.toLowerCase(); });
      button.disabled = true;
      progress.hidden = false;
      progress.max = file.size || 1;
      progress.value = 0;
      setText(out, "verdict", msg("checking"));
      var shownPercent = -1;
      var onProgress = function (read) {
        var percent = Math.floor(100 * read / (file.size || 1));
        progress.value = read;
        if (percent !== shownPercent) {
          shownPercent = percent;
          progressText.textContent = fill(msg("progress"), { percent: percent });
        }
      };
      var result;
      try {
        result = await verifyFile(file, trusted, onProgress);
      } catch (e) {
        result = { ok: false, line: null, reason: String(e), kind: "other", lines: 0, verifier: null };
      }
      progress.value = progress.max;
      progressText.textContent = fill(msg("progress"), { percent: 100 });
      button.disabled = false;
      var v = result.verifier;
      runs += 1;
      out.setAttribute("data-run", String(runs));
      out.setAttribute("data-verdict", result.ok ? "valid" : "invalid");
      out.setAttribute("data-line", result.line === null ? "" : String(result.line));
      out.className = "verify-result " + (result.ok ? "valid" : "invalid");
      setText(out, "verdict", result.ok
        ? fill(msg("valid"), { transactions: v.shown })
        : fill(msg("invalid"), { line: result.line === null ? "?" : result.line }));
      if (!result.ok) {
        out.querySelector("[data-part='fault']").hidden = false;
        setText(out, "fault", msg("kind-" + result.kind) || msg("kind-other"));
        setText(out, "reason", result.reason);
      }
      if (v) {
        out.querySelector("[data-part='counts']").hidden = false;
        setText(out, "file", file.name);
        setText(out, "lines", String(result.lines));
        setText(out, "transactions", String(v.shown));
        setText(out, "redacted", String(v.redacted));
        setText(out, "blocks", String(v.signed.length));
        setText(out, "head", v.hash);
        setText(out, "trust", trusted.length ? fill(msg("trust-given"), { keys: trusted.join(", ") }) : msg("trust-file"));
        var list = out.querySelector("[data-out='keys']");
        keyRanges(v).forEach(function (run) {
          var item = document.createElement("li");
          var code = document.createElement("code");
          code.textContent = run.key;
          item.appendChild(code);
          item.appendChild(document.createTextNode(" " + fill(msg("blocks"), { from: pyStr(run.from), to: pyStr(run.to) })));
          list.appendChild(item);
        });
        if (!v.signed.length && v.manifest === null) {
          var none = document.createElement("li");
          none.textContent = msg("no-keys");
          list.appendChild(none);
        }
        if (v.manifest !== null) {
          var item = document.createElement("li");
          var code = document.createElement("code");
          code.textContent = pyStr(get(v.manifest, "public_key"));
          item.appendChild(code);
          item.appendChild(document.createTextNode(" " + msg("manifest-key")));
          list.appendChild(item);
        }
      }
    });
  }

  // For tests and the curious: the verifier without the page.
  window.voucherledgerVerify = { verifyFile: verifyFile, canonicalText: canonicalText, parseLine: parseLine };

  document.addEventListener("DOMContentLoaded", function () {
    var tool = document.getElementById("verify-tool");
    if (tool) { start(tool); }
  });
})();
