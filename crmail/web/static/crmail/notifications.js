// The notifications page: new notifications arrive by server-sent events
// (/notifications/stream/) and are added to the top of the feed, the bell's badge follows
// the unread count, and, once allowed, each new one shows as a desktop notification.
// Without JavaScript or EventSource the page works as it is: reload to see what is new.
(function () {
  "use strict";

  var feed = document.getElementById("notification-feed");
  if (!feed) {
    return;
  }
  var badge = document.querySelector("[data-unread-badge]");
  var bell = document.querySelector("a.bell");
  var markAll = document.getElementById("mark-all-read");
  var button = document.getElementById("desktop-notifications");
  var status = document.getElementById("desktop-status");
  var words = document.querySelector("[data-unread-words]");
  var token = document.querySelector("#mark-all-read [name=csrfmiddlewaretoken]");
  var canNotify = "Notification" in window;

  function say(text) {
    if (status) {
      status.textContent = text;
      status.hidden = false;
    }
  }

  if (button && canNotify && Notification.permission === "default") {
    button.hidden = false;
    button.addEventListener("click", function () {
      Notification.requestPermission().then(function (answer) {
        button.hidden = true;
        say(answer === "granted"
          ? "Desktop notifications are on: new customer mail shows on your screen while this page is open."
          : "Desktop notifications are off: your browser was not allowed to show them.");
      });
    });
  }

  function setUnread(n) {
    if (badge) {
      badge.textContent = String(n);
      badge.hidden = n === 0;
    }
    if (bell) {
      bell.setAttribute("aria-label", n ? "Notifications, " + n + " unread" : "Notifications");
    }
    if (markAll) {
      markAll.hidden = n === 0;
    }
    if (words) {
      words.textContent = n ? "; " + n + " unread" : "";
    }
  }

  function markReadForm(id) {
    var form = document.createElement("form");
    form.method = "post";
    form.action = markAll ? markAll.action : "";
    form.className = "mark-one";
    var csrf = document.createElement("input");
    csrf.type = "hidden";
    csrf.name = "csrfmiddlewaretoken";
    csrf.value = token ? token.value : "";
    var which = document.createElement("input");
    which.type = "hidden";
    which.name = "id";
    which.value = String(id);
    var submit = document.createElement("button");
    submit.type = "submit";
    submit.className = "small";
    submit.textContent = "Mark read";
    form.append(csrf, which, submit);
    return form;
  }

  function item(data) {
    var li = document.createElement("li");
    li.className = "notification unread fresh";
    var head = document.createElement("div");
    head.className = "notification-head";
    var mark = document.createElement("span");
    mark.className = "unread-mark";
    mark.textContent = "Unread";
    var link = document.createElement("a");
    link.className = "notification-title";
    link.href = data.url;
    link.textContent = data.title;
    var time = document.createElement("time");
    time.className = "muted";
    time.dateTime = data.created_at;
    time.textContent = data.when;
    head.append(mark, link, time);
    li.append(head);
    if (data.excerpt) {
      var excerpt = document.createElement("p");
      excerpt.className = "excerpt";
      excerpt.textContent = data.excerpt;
      li.append(excerpt);
    }
    if (markAll) {
      li.append(markReadForm(data.id));
    }
    return li;
  }

  function show(data) {
    var empty = document.getElementById("notifications-empty");
    if (empty) {
      empty.remove();
    }
    if (!feed.hasAttribute("data-older-page")) {
      feed.prepend(item(data));
    }
    if (canNotify && Notification.permission === "granted") {
      var shown = new Notification(data.title, { body: data.excerpt || "", tag: "crmail-" + data.id });
      shown.addEventListener("click", function () {
        window.focus();
        window.location.assign(data.url);
      });
    }
  }

  if (!window.EventSource) {
    return;
  }
  var url = feed.dataset.stream + "?after=" + encodeURIComponent(feed.dataset.lastId || "0");
  var source = new EventSource(url);
  source.addEventListener("notification", function (event) {
    show(JSON.parse(event.data));
  });
  source.addEventListener("unread", function (event) {
    setUnread(JSON.parse(event.data).unread);
  });
  window.addEventListener("pagehide", function () {
    source.close();
  });
})();
