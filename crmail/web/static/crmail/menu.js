// The top bar's drop-down menus (<details class="admin-menu">): a click outside an open
// menu or the Escape key closes it, as menus do, so it never stays over the page.
(function () {
  "use strict";
  function openMenus() {
    return document.querySelectorAll("details.admin-menu[open]");
  }
  document.addEventListener("click", function (event) {
    openMenus().forEach(function (menu) {
      if (!menu.contains(event.target)) menu.removeAttribute("open");
    });
  });
  document.addEventListener("keydown", function (event) {
    if (event.key !== "Escape") return;
    openMenus().forEach(function (menu) {
      menu.removeAttribute("open");
      var summary = menu.querySelector("summary");
      if (summary) summary.focus();
    });
  });
})();
