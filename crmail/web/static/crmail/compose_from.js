// The composer's From choice: of the notes on organisation addresses (whether replies to
// them reach crmail), show only the chosen address's. Without JavaScript all are shown.
(function () {
  "use strict";
  const from = document.getElementById("id_sender");
  const notes = document.querySelectorAll("[data-from-note]");
  if (!from || !notes.length) return;
  const show = function () {
    notes.forEach(function (note) {
      note.hidden = note.dataset.fromNote !== from.value;
    });
  };
  from.addEventListener("change", show);
  show();
})();
