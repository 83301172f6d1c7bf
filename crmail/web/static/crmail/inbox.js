// The sales inbox's keyboard shortcuts (crmail/web/templates/web/inbox.html).
// j/k move, Enter/o open, x select, r/a/f reply/all/forward, e archive, # delete,
// s flag or unflag, u mark unread, / search, ? help (Esc closes). Nothing fires while
// typing in a field.
(function () {
  "use strict";
  var form = document.getElementById("inbox-form");
  var help = document.getElementById("inbox-help");
  if (!form) return;
  var rows = Array.prototype.slice.call(document.querySelectorAll("[data-row]"));
  var current = -1;

  function typing(target) {
    if (!target) return false;
    var tag = target.tagName;
    return tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT" || target.isContentEditable;
  }

  function select(index) {
    if (!rows.length) return;
    index = Math.max(0, Math.min(rows.length - 1, index));
    if (current >= 0 && rows[current]) rows[current].classList.remove("current");
    current = index;
    var row = rows[current];
    row.classList.add("current");
    row.scrollIntoView({ block: "nearest" });
  }

  function row() {
    return current >= 0 ? rows[current] : null;
  }

  function go(attr) {
    var r = row();
    if (r && r.dataset[attr]) window.location.href = r.dataset[attr];
  }

  function act(value) {
    // On the ticked conversations, or the current one when none is ticked.
    var ticked = form.querySelectorAll("input[name=conversation]:checked");
    if (!ticked.length) {
      var r = row();
      if (!r) return;
      r.querySelector("input[name=conversation]").checked = true;
    }
    var button = form.querySelector('button[name=action][value="' + value + '"]');
    if (button) form.requestSubmit(button);
  }

  function showHelp(show) {
    if (!help) return;
    help.hidden = !show;
    if (show) help.querySelector("[data-inbox-help-close]").focus();
  }

  document.querySelectorAll("[data-inbox-help]").forEach(function (b) {
    b.addEventListener("click", function () { showHelp(true); });
  });
  if (help) {
    help.querySelector("[data-inbox-help-close]").addEventListener("click", function () {
      showHelp(false);
    });
  }
  rows.forEach(function (r, i) {
    r.addEventListener("click", function (event) {
      if (event.target.closest("a, input, button, label")) return;
      select(i);
    });
  });

  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    if (help && !help.hidden) {
      if (event.key === "Escape" || event.key === "?") {
        event.preventDefault();
        showHelp(false);
      }
      return;
    }
    if (typing(event.target)) return;
    var key = event.key;
    var handled = true;
    switch (key) {
      case "j": select(current + 1); break;
      case "k": select(current < 0 ? 0 : current - 1); break;
      case "Enter": case "o":
        if (event.target && event.target.closest && event.target.closest("a, button")) {
          handled = false;
        } else {
          go("open");
        }
        break;
      case "x":
        var r = row();
        if (r) {
          var box = r.querySelector("input[name=conversation]");
          box.checked = !box.checked;
        }
        break;
      case "r": go("reply"); break;
      case "a": go("all"); break;
      case "f": go("forward"); break;
      case "e": act("archive"); break;
      case "#": act("delete"); break;
      case "u": act("unread"); break;
      case "s":
        var cur = row();
        if (cur) act(cur.dataset.flagged === "1" ? "unflag" : "flag");
        break;
      case "/":
        var search = document.getElementById("topsearch-q");
        if (search) search.focus();
        break;
      case "?": showHelp(true); break;
      default: handled = false;
    }
    if (handled) event.preventDefault();
  });
})();
