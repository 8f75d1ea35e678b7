// The admin's pages: the copy button of an invitation link. Without JavaScript the
// button stays hidden and the link is selected and copied by hand.
(function () {
  "use strict";

  function say(button, message) {
    var status = document.getElementById("copy-status");
    if (status) { status.textContent = message || ""; }
  }

  function copy(button) {
    var source = document.getElementById(button.getAttribute("data-copy"));
    if (!source) { return; }
    source.focus();
    source.select();
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(source.value).then(
        function () { say(button, button.getAttribute("data-msg-copied")); },
        function () { say(button, button.getAttribute("data-msg-select")); }
      );
    } else {
      // Over plain http (not localhost) there is no clipboard API: the text is
      // selected, ready for Ctrl+C.
      say(button, button.getAttribute("data-msg-select"));
    }
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("button[data-copy]").forEach(function (button) {
      button.hidden = false;
      button.addEventListener("click", function () { copy(button); });
    });
    document.querySelectorAll("input.copy-source").forEach(function (input) {
      input.addEventListener("focus", function () { input.select(); });
    });
  });
})();
