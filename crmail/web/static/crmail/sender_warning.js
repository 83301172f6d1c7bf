// The composer's warning that mail from the chosen From address goes out without crmail's
// DKIM signature (its domain is not authenticated): shown for the address chosen, hidden
// for the others. Without JavaScript the page shows the warning of the address it opened with.
(function () {
  "use strict";
  var select = document.querySelector("select[name=sender]");
  var notes = document.querySelectorAll("[data-sender-warning]");
  if (!select || !notes.length) return;
  function show() {
    notes.forEach(function (note) { note.hidden = note.dataset.senderWarning !== select.value; });
  }
  select.addEventListener("change", show);
  show();
})();
