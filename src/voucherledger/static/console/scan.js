// The redeem page's own script: scan the group's QR code with the camera (the only
// part of the console that needs JavaScript), and check evidence files' sizes before
// they are sent. Loaded after the vendored jsQR (global `jsQR`); the voucher code
// check itself is console.js's. The page's CSP allows no inline script.
(function () {
  "use strict";

  var button = document.querySelector("[data-scan]");
  var input = document.querySelector("input[data-voucher-code]");

  // Evidence files: at most N, each within the limit (the server checks again).
  document.querySelectorAll("input[type=file][data-max-bytes]").forEach(function (files) {
    files.addEventListener("change", function () {
      var max = parseInt(files.getAttribute("data-max-bytes"), 10);
      var most = parseInt(files.getAttribute("data-max-files"), 10);
      var total = parseInt(files.getAttribute("data-max-total-bytes"), 10);
      var message = "";
      var sum = 0;
      for (var i = 0; i < files.files.length; i++) {
        sum += files.files[i].size;
        if (files.files[i].size > max) { message = files.getAttribute("data-msg-too-large"); }
      }
      if (!message && sum > total) { message = files.getAttribute("data-msg-too-heavy"); }
      if (files.files.length > most) { message = files.getAttribute("data-msg-too-many"); }
      files.setCustomValidity(message);
      if (message) { files.reportValidity(); }
    });
  });

  if (!button || !input || !navigator.mediaDevices || !navigator.mediaDevices.getUserMedia ||
      typeof window.jsQR !== "function") {
    return; // no camera here: the code is typed
  }

  var scanner = document.querySelector("[data-scanner]");
  var video = scanner.querySelector("video");
  var canvas = scanner.querySelector("canvas");
  var stopButton = scanner.querySelector("[data-scan-stop]");
  var status = document.getElementById("scan-status");
  var stream = null;
  var context = canvas.getContext("2d", { willReadFrequently: true });

  function say(name) { status.textContent = button.getAttribute("data-msg-" + name) || ""; }

  function stop() {
    if (stream) {
      stream.getTracks().forEach(function (track) { track.stop(); });
      stream = null;
    }
    video.srcObject = null;
    scanner.hidden = true;
    button.hidden = false;
  }

  function found(text) {
    var code = window.voucherledger.codeFromScan(text);
    stop();
    if (!window.voucherledger.normalise(code)) { say("not-code"); return; }
    input.value = code;
    input.dispatchEvent(new Event("input", { bubbles: true }));
    say("found");
    if (input.form.requestSubmit) { input.form.requestSubmit(); } else { input.form.submit(); }
  }

  function look() {
    if (!stream) { return; }
    if (video.readyState >= video.HAVE_ENOUGH_DATA && video.videoWidth) {
      canvas.width = video.videoWidth;
      canvas.height = video.videoHeight;
      context.drawImage(video, 0, 0, canvas.width, canvas.height);
      var frame = context.getImageData(0, 0, canvas.width, canvas.height);
      var qr = window.jsQR(frame.data, frame.width, frame.height, { inversionAttempts: "attemptBoth" });
      if (qr && qr.data) { found(qr.data); return; }
    }
    window.requestAnimationFrame(look);
  }

  function failed(error) {
    stop();
    var name = error && error.name;
    if (name === "NotAllowedError" || name === "SecurityError") { say("denied"); }
    else if (name === "NotFoundError" || name === "OverconstrainedError") { say("none"); }
    else if (name === "NotReadableError" || name === "AbortError") { say("busy"); }
    else { say("failed"); }
  }

  button.hidden = false;
  button.addEventListener("click", function () {
    say("starting");
    navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" }, audio: false })
      .then(function (media) {
        stream = media;
        video.srcObject = media;
        scanner.hidden = false;
        button.hidden = true;
        say("looking");
        return video.play();
      })
      .then(function () { window.requestAnimationFrame(look); })
      .catch(failed);
  });
  stopButton.addEventListener("click", function () { stop(); status.textContent = ""; button.focus(); });
  window.addEventListener("pagehide", stop);
})();
