// hubctl web UI: the copy buttons, the only script. Without JavaScript the buttons
// stay hidden and the commands are plain selectable text.
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  if (!navigator.clipboard) {
    return;
  }
  document.querySelectorAll("button.copy[data-copy]").forEach(function (b) {
    b.hidden = false;
    b.addEventListener("click", function () {
      navigator.clipboard.writeText(b.dataset.copy).then(function () {
        b.textContent = "Copied";
        b.classList.add("done");
        setTimeout(function () {
          b.textContent = "Copy";
          b.classList.remove("done");
        }, 2000);
      }, function () {
        b.textContent = "Copy failed";
      });
    });
  });
});
