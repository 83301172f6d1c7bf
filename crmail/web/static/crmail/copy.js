// A "Copy" button beside a value to copy (a secret shown once, a DNS record to publish):
// copies the text of the element its data-copy names. Without JavaScript (or a clipboard)
// the button stays hidden and the value can be selected by hand.
(function () {
  "use strict";
  document.querySelectorAll("button[data-copy]").forEach(function (button) {
    var source = document.getElementById(button.dataset.copy);
    if (!source || !navigator.clipboard) return;
    button.hidden = false;
    button.addEventListener("click", function () {
      var said = button.parentElement.querySelector(".copied");
      navigator.clipboard.writeText(source.textContent.trim()).then(
        function () { if (said) said.textContent = "Copied."; },
        function () { if (said) said.textContent = "Could not copy: select the text and copy it by hand."; }
      );
    });
  });
})();
