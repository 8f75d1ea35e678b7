// The console's own script: progressive enhancement only, every page works without it
// (except the camera scanner). Loaded from the package; the page's CSP allows no
// inline script.
(function () {
  "use strict";

  // Voucher codes: the same check as the server's vouchers/codes.py (Damm over the
  // quasigroup x*y = 2x + y in GF(32), x^5 + x^2 + 1), so a typo is caught before
  // anything is sent.
  var CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
  var PREFIX = "VL";
  var DATA_LENGTH = 16;

  function double(x) {
    x <<= 1;
    if (x & 32) { x ^= 37; }
    return x;
  }

  function interim(chars) {
    var state = 0;
    for (var i = 0; i < chars.length; i++) {
      state = double(state) ^ CROCKFORD.indexOf(chars[i]);
    }
    return state;
  }

  // The canonical form of a typed code, or null (exactly vouchers.codes.normalise).
  function normalise(text) {
    var compact = text.replace(/\s+/g, "").replace(/-/g, "").toUpperCase();
    if (compact.length === PREFIX.length + DATA_LENGTH + 1 && compact.indexOf(PREFIX) === 0) {
      compact = compact.slice(PREFIX.length);
    }
    compact = compact.replace(/O/g, "0").replace(/[IL]/g, "1");
    if (compact.length !== DATA_LENGTH + 1) { return null; }
    for (var i = 0; i < compact.length; i++) {
      if (CROCKFORD.indexOf(compact[i]) < 0) { return null; }
    }
    if (interim(compact) !== 0) { return null; }
    var groups = [];
    for (var j = 0; j < DATA_LENGTH; j += 4) { groups.push(compact.slice(j, j + 4)); }
    return PREFIX + "-" + groups.join("-") + "-" + compact[DATA_LENGTH];
  }

  // A scanned QR holds the code alone or a console URL with ?code=...
  function codeFromScan(text) {
    try {
      var url = new URL(text);
      var found = url.searchParams.get("code");
      if (found) { return found; }
    } catch (e) { /* not a URL: the code itself */ }
    return text;
  }

  window.voucherledger = { normalise: normalise, codeFromScan: codeFromScan };

  // <input data-voucher-code aria-describedby="..."> with a sibling [data-code-status].
  function checkInput(input) {
    var status = document.getElementById(input.getAttribute("data-status"));
    var value = input.value.trim();
    var ok = normalise(value);
    var complete = value.replace(/[\s-]/g, "").length >= DATA_LENGTH + 1;
    input.setCustomValidity(ok || !value ? "" : (input.getAttribute("data-msg-bad") || "?"));
    if (status) {
      if (!value) { status.textContent = ""; status.className = "code-status"; }
      else if (ok) { status.textContent = input.getAttribute("data-msg-ok"); status.className = "code-status ok"; }
      else if (complete) { status.textContent = input.getAttribute("data-msg-bad"); status.className = "code-status bad"; }
      else { status.textContent = input.getAttribute("data-msg-short"); status.className = "code-status"; }
    }
    return ok;
  }

  function enhance(root) {
    root.querySelectorAll("input[data-voucher-code]").forEach(function (input) {
      if (input.dataset.enhanced) { return; }
      input.dataset.enhanced = "1";
      input.addEventListener("input", function () { checkInput(input); });
      if (input.value) { checkInput(input); }
      var form = input.form;
      if (form) {
        form.addEventListener("submit", function (event) {
          if (!checkInput(input)) {
            event.preventDefault();
            event.stopImmediatePropagation();
            input.focus();
            input.reportValidity();
          } else {
            input.value = normalise(input.value);
          }
        }, true);
      }
    });

    // One submission per form: a second click while the first is on its way is
    // ignored (the server would replay the first anyway: the form's idempotency key).
    root.querySelectorAll("form").forEach(function (form) {
      if (form.dataset.once) { return; }
      form.dataset.once = "1";
      form.addEventListener("submit", function (event) {
        if (event.defaultPrevented) { return; }
        if (form.dataset.sending) { event.preventDefault(); return; }
        form.dataset.sending = "1";
        form.querySelectorAll("button[type=submit]").forEach(function (b) {
          b.setAttribute("aria-disabled", "true");
          b.classList.add("sending");
        });
      });
    });

    // Buttons that print the page.
    root.querySelectorAll("[data-print]").forEach(function (button) {
      button.addEventListener("click", function () { window.print(); });
    });
  }

  // Back/forward cache: a page restored after a submission must accept a new one.
  window.addEventListener("pageshow", function () {
    document.querySelectorAll("form[data-sending]").forEach(function (form) {
      delete form.dataset.sending;
      form.querySelectorAll("button.sending").forEach(function (b) {
        b.removeAttribute("aria-disabled");
        b.classList.remove("sending");
      });
    });
  });

  document.addEventListener("DOMContentLoaded", function () { enhance(document); });
  document.addEventListener("htmx:load", function (event) { enhance(event.target); });
})();
