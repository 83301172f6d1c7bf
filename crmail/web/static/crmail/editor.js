/* crmail's message editor: rich text for the composer, with a plain-text alternative.
 *
 * It turns a <textarea data-editor="rich"> into an editable area with a toolbar (bold,
 * italic, underline, lists, link, quote, remove formatting) and a "Plain text" switch
 * back to the textarea. On submit it puts the HTML in the form's hidden body_html field
 * and the text alternative in the textarea; in plain text it leaves body_html empty.
 * Without this script the composer is the plain textarea it always was.
 *
 * Everything it shows or sends is kept to a small set of elements (below); the server
 * cleans the HTML again with the allowlist that shows mail (crmail/mail/display.py), so
 * this is for tidiness, not the safety boundary. No inline script or style: it runs
 * under crmail's Content-Security-Policy.
 */
(function () {
  "use strict";

  var KEEP = { B: 1, STRONG: 1, I: 1, EM: 1, U: 1, A: 1, UL: 1, OL: 1, LI: 1, BLOCKQUOTE: 1, P: 1, DIV: 1, BR: 1 };
  // Gone with everything inside them.
  var DROP = {
    SCRIPT: 1, STYLE: 1, HEAD: 1, TITLE: 1, TEMPLATE: 1, NOSCRIPT: 1, IFRAME: 1, OBJECT: 1,
    EMBED: 1, SVG: 1, MATH: 1, TEXTAREA: 1, SELECT: 1, BUTTON: 1, META: 1, LINK: 1, IMG: 1,
    VIDEO: 1, AUDIO: 1, CANVAS: 1, INPUT: 1
  };
  // Other elements that start a line of their own become a <div>; the rest are unwrapped.
  var AS_BLOCK = {
    H1: 1, H2: 1, H3: 1, H4: 1, H5: 1, H6: 1, PRE: 1, TABLE: 1, TR: 1, SECTION: 1,
    ARTICLE: 1, HEADER: 1, FOOTER: 1, ADDRESS: 1, CENTER: 1, DL: 1, DT: 1, DD: 1, HR: 1,
    FIGURE: 1, MAIN: 1, ASIDE: 1, DETAILS: 1, SUMMARY: 1
  };
  var SIGNATURE_LINE = "-- ";

  /* A link address crmail keeps: http, https or mailto, read as a browser reads it. */
  function safeHref(value) {
    var href = (value || "").trim();
    if (/^(https?|mailto):/i.test(href.replace(/[\u0000-\u0020\u007f]/g, ""))) {
      return href;
    }
    return "";
  }

  /* The children of ``source`` (from an inert document) copied into ``target``, kept
   * to the small set: no attributes but a link's address. */
  function cleanInto(source, target) {
    var child, tag, el, href;
    for (child = source.firstChild; child; child = child.nextSibling) {
      if (child.nodeType === 3) {
        target.appendChild(document.createTextNode(child.data));
        continue;
      }
      if (child.nodeType !== 1) {
        continue;
      }
      tag = child.nodeName.toUpperCase();
      if (DROP[tag]) {
        continue;
      }
      if (tag === "A") {
        href = safeHref(child.getAttribute("href"));
        if (!href) {
          cleanInto(child, target);
          continue;
        }
        el = document.createElement("a");
        el.setAttribute("href", href);
      } else if (KEEP[tag]) {
        el = document.createElement(tag.toLowerCase());
      } else if (AS_BLOCK[tag]) {
        el = document.createElement("div");
      } else {
        if (tag === "TD" || tag === "TH") {
          target.appendChild(document.createTextNode(" "));
        }
        cleanInto(child, target);
        continue;
      }
      cleanInto(child, el);
      target.appendChild(el);
    }
  }

  /* HTML text, parsed where nothing in it runs or loads, cleaned into ``target``. */
  function setHtml(target, html) {
    var parsed = new DOMParser().parseFromString(html, "text/html");
    target.textContent = "";
    cleanInto(parsed.body, target);
  }

  /* Plain text as elements: line breaks kept, runs of lines starting with ">" as a
   * blockquote (a quoted message reads as one again). */
  function textInto(target, text) {
    var lines = text.replace(/\r\n?/g, "\n").split("\n");
    var i = 0, quoted, quote, afterText = false;
    while (i < lines.length) {
      if (lines[i].charAt(0) === ">") {
        quoted = [];
        while (i < lines.length && lines[i].charAt(0) === ">") {
          quoted.push(lines[i].replace(/^> ?/, ""));
          i += 1;
        }
        quote = document.createElement("blockquote");
        textInto(quote, quoted.join("\n"));
        target.appendChild(quote);
        afterText = false;
        continue;
      }
      if (afterText) {
        target.appendChild(document.createElement("br"));
      }
      if (lines[i]) {
        target.appendChild(document.createTextNode(lines[i]));
      }
      afterText = true;
      i += 1;
    }
  }

  /* The text alternative of the editor's content: paragraphs and line breaks kept,
   * list items as "- " or "1. ", blockquotes under "> ", a link's address after its
   * words (as crmail's server writes it, display.html_to_text). */
  function toText(root) {
    var lines = [];
    var st = { line: "", depth: 0, lists: [] };

    function endLine() {
      lines.push([st.depth, st.line === SIGNATURE_LINE ? st.line : st.line.replace(/\s+$/, "")]);
      st.line = "";
    }
    function block(blank) {
      if (st.line.trim()) {
        endLine();
      }
      st.line = "";
      if (blank && lines.length && lines[lines.length - 1][1]) {
        lines.push([st.depth, ""]);
      }
    }
    function walk(node) {
      var child, tag, data, list, shown, href;
      for (child = node.firstChild; child; child = child.nextSibling) {
        if (child.nodeType === 3) {
          data = child.data.replace(/\u00a0/g, " ").replace(/\s+/g, " ");
          if (!st.line.trim()) {
            data = st.line + data.replace(/^\s+/, "");
            st.line = "";
          }
          st.line += data;
          continue;
        }
        if (child.nodeType !== 1) {
          continue;
        }
        tag = child.nodeName.toUpperCase();
        if (tag === "BR") {
          endLine();
        } else if (tag === "BLOCKQUOTE") {
          block(false);
          st.depth += 1;
          walk(child);
          block(false);
          st.depth = Math.max(0, st.depth - 1);
          if (lines.length && !lines[lines.length - 1][1]) {
            lines[lines.length - 1] = [st.depth, ""]; // a quote's end: a blank line outside it
          }
          block(true);
        } else if (tag === "UL" || tag === "OL") {
          block(st.lists.length === 0);
          st.lists.push({ numbered: tag === "OL", count: 0 });
          walk(child);
          block(st.lists.length === 1);
          st.lists.pop();
        } else if (tag === "LI") {
          block(false);
          list = st.lists[st.lists.length - 1];
          if (list) {
            list.count += 1;
            st.line = new Array(st.lists.length).join("   ") + (list.numbered ? list.count + ". " : "- ");
          }
          walk(child);
        } else if (tag === "A") {
          walk(child);
          href = safeHref(child.getAttribute("href"));
          shown = child.textContent.replace(/\s+/g, " ").trim();
          if (href && href !== shown && href !== "mailto:" + shown) {
            st.line += shown ? " <" + href + ">" : href;
          }
        } else if (tag === "P" || /^H[1-6]$/.test(tag) || tag === "TABLE" || tag === "PRE") {
          block(true);
          walk(child);
          block(true);
        } else if (tag === "DIV" || AS_BLOCK[tag]) {
          block(false);
          walk(child);
          block(false);
        } else {
          walk(child);
        }
      }
    }

    walk(root);
    block(false);
    var out = [];
    lines.forEach(function (item) {
      var depth = item[0], line = item[1];
      if (!line && out.length && !out[out.length - 1] && depth === 0) {
        return; // one blank line at most
      }
      out.push(line === SIGNATURE_LINE ? line : (new Array(depth + 1).join("> ") + line).replace(/\s+$/, ""));
    });
    return out.join("\n").replace(/^\n+|\n+$/g, "");
  }

  function hasContent(root) {
    return root.textContent.trim() !== "" || root.querySelector("a, li, blockquote") !== null;
  }

  var BUTTONS = [
    { command: "bold", label: "Bold", key: "B", className: "editor-bold" },
    { command: "italic", label: "Italic", key: "I", className: "editor-italic" },
    { command: "underline", label: "Underline", key: "U", className: "editor-underline" },
    { separator: true },
    { command: "insertUnorderedList", label: "Bulleted list", text: "• List" },
    { command: "insertOrderedList", label: "Numbered list", text: "1. List" },
    { separator: true },
    { command: "link", label: "Link", text: "Link" },
    { command: "quote", label: "Quote", text: "Quote" },
    { command: "clear", label: "Remove formatting", text: "Clear" }
  ];
  var isMac = /Mac|iPhone|iPad/.test(navigator.platform || "");

  function Editor(textarea) {
    var form = textarea.form;
    this.textarea = textarea;
    this.hidden = form.querySelector('input[type="hidden"][name="' + textarea.name + '_html"]');
    this.label = form.querySelector('label[for="' + textarea.id + '"]');
    this.build();
    var posted = this.hidden.value;
    if (posted) {
      setHtml(this.area, posted); // shown again after the server refused something
    } else if (textarea.hasAttribute("data-rich-start")) {
      setHtml(this.area, textarea.getAttribute("data-rich-start"));
    } else {
      textInto(this.area, textarea.value);
    }
    // The last HTML and text known to say the same: until either is changed, switching
    // gives the other as it was (the signature and quote exactly as crmail wrote them),
    // not a conversion of a conversion.
    this.pair = { html: this.area.innerHTML, text: textarea.value };
    var plain = false;
    try {
      plain = window.localStorage.getItem("crmail-editor") === "plain";
    } catch (e) {
      plain = false;
    }
    this.setRich(!plain, false);
    form.addEventListener("submit", this.submit.bind(this));
  }

  Editor.prototype.build = function () {
    var self = this;
    var wrap = document.createElement("div");
    wrap.className = "editor";
    var bar = document.createElement("div");
    bar.className = "editor-toolbar";
    bar.setAttribute("role", "toolbar");
    bar.setAttribute("aria-label", "Formatting");
    this.buttons = {};
    BUTTONS.forEach(function (spec) {
      if (spec.separator) {
        var sep = document.createElement("span");
        sep.className = "editor-sep";
        sep.setAttribute("aria-hidden", "true");
        bar.appendChild(sep);
        return;
      }
      var button = document.createElement("button");
      button.type = "button";
      button.className = "editor-button" + (spec.className ? " " + spec.className : "");
      button.textContent = spec.text || spec.key;
      button.setAttribute("aria-label", spec.label);
      button.title = spec.key ? spec.label + " (" + (isMac ? "⌘" : "Ctrl+") + spec.key + ")" : spec.label;
      if (spec.command !== "link" && spec.command !== "clear") {
        button.setAttribute("aria-pressed", "false");
      }
      // Keep the selection in the text when the button is pressed.
      button.addEventListener("mousedown", function (event) { event.preventDefault(); });
      button.addEventListener("click", function () { self.run(spec.command); });
      bar.appendChild(button);
      self.buttons[spec.command] = button;
    });
    var mode = document.createElement("button");
    mode.type = "button";
    mode.className = "editor-mode";
    mode.textContent = "Plain text";
    mode.title = "Write without formatting (the message is sent as plain text)";
    mode.addEventListener("click", function () { self.setRich(!self.rich, true); });
    bar.appendChild(mode);
    this.mode = mode;

    var area = document.createElement("div");
    area.className = "editor-area";
    area.contentEditable = "true";
    area.setAttribute("role", "textbox");
    area.setAttribute("aria-multiline", "true");
    area.spellcheck = true;
    if (this.label) {
      this.label.id = this.label.id || this.textarea.id + "_label";
    }
    var describedBy = this.textarea.getAttribute("aria-describedby");
    if (describedBy) {
      area.setAttribute("aria-describedby", describedBy);
    }
    area.addEventListener("keydown", this.keydown.bind(this));
    area.addEventListener("paste", this.paste.bind(this));
    area.addEventListener("keyup", this.update.bind(this));
    area.addEventListener("mouseup", this.update.bind(this));
    area.addEventListener("focus", this.update.bind(this));
    document.addEventListener("selectionchange", this.update.bind(this));

    wrap.appendChild(bar);
    wrap.appendChild(area);
    this.textarea.parentNode.insertBefore(wrap, this.textarea);
    this.wrap = wrap;
    this.bar = bar;
    this.area = area;
    if (this.label) {
      this.label.addEventListener("click", function (event) {
        if (self.rich) {
          event.preventDefault();
          self.area.focus();
        }
      });
    }
  };

  /* Rich (the editor) or plain (the textarea), converting what was written. */
  Editor.prototype.setRich = function (rich, convert) {
    if (convert) {
      if (rich) {
        if (this.textarea.value === this.pair.text) {
          setHtml(this.area, this.pair.html);
        } else {
          this.area.textContent = "";
          textInto(this.area, this.textarea.value);
        }
      } else {
        this.textarea.value = this.textOf(this.area);
      }
      this.pair = { html: this.area.innerHTML, text: this.textarea.value };
      try {
        window.localStorage.setItem("crmail-editor", rich ? "rich" : "plain");
      } catch (e) { /* private windows may refuse; the choice lasts this page */ }
    }
    this.rich = rich;
    this.wrap.classList.toggle("editor-plain", !rich);
    this.textarea.hidden = rich;
    this.mode.setAttribute("aria-pressed", rich ? "false" : "true");
    // The field's label names whichever of the two is in use.
    if (this.label) {
      this.label.htmlFor = rich ? "" : this.textarea.id;
      if (rich) {
        this.area.setAttribute("aria-labelledby", this.label.id);
      } else {
        this.area.removeAttribute("aria-labelledby");
      }
    }
    if (convert) {
      (rich ? this.area : this.textarea).focus();
    }
  };

  Editor.prototype.run = function (command) {
    this.area.focus();
    if (command === "link") {
      this.link();
    } else if (command === "quote") {
      var inQuote = this.closest("BLOCKQUOTE");
      if (inQuote) {
        document.execCommand("outdent");
        if (this.closest("BLOCKQUOTE") === inQuote) {
          document.execCommand("formatBlock", false, "div");
        }
      } else {
        document.execCommand("formatBlock", false, "blockquote");
      }
    } else if (command === "clear") {
      document.execCommand("removeFormat");
      document.execCommand("unlink");
    } else {
      document.execCommand(command);
    }
    this.update();
  };

  /* The nearest element named ``tag`` around the selection, inside the editor. */
  Editor.prototype.closest = function (tag) {
    var selection = window.getSelection();
    var node = selection && selection.rangeCount ? selection.getRangeAt(0).startContainer : null;
    while (node && node !== this.area) {
      if (node.nodeName === tag) {
        return node;
      }
      node = node.parentNode;
    }
    return null;
  };

  Editor.prototype.link = function () {
    var current = this.closest("A");
    var answer = window.prompt(
      "Link address (https://…, http://… or mailto:…):",
      current ? current.getAttribute("href") : "https://"
    );
    if (answer === null) {
      return;
    }
    answer = answer.trim();
    if (!answer || answer === "https://") {
      document.execCommand("unlink");
      return;
    }
    if (/^www\./i.test(answer)) {
      answer = "https://" + answer;
    } else if (/^[^\s@:\/]+@[^\s@:\/]+\.[a-z]{2,}$/i.test(answer)) {
      answer = "mailto:" + answer;
    }
    var href = safeHref(answer);
    if (!href) {
      window.alert("A link must start with https://, http:// or mailto: — “" + answer + "” was not added.");
      return;
    }
    var selection = window.getSelection();
    if (selection.isCollapsed && !current) {
      var a = document.createElement("a");
      a.setAttribute("href", href);
      a.textContent = href.replace(/^mailto:/i, "");
      var range = selection.getRangeAt(0);
      range.insertNode(a);
      range.setStartAfter(a);
      range.collapse(true);
      selection.removeAllRanges();
      selection.addRange(range);
    } else if (current && selection.isCollapsed) {
      current.setAttribute("href", href);
    } else {
      document.execCommand("createLink", false, href);
    }
  };

  Editor.prototype.keydown = function (event) {
    if (!(isMac ? event.metaKey : event.ctrlKey) || event.altKey) {
      return;
    }
    var command = { b: "bold", i: "italic", u: "underline" }[event.key.toLowerCase()];
    if (command && !event.shiftKey) {
      event.preventDefault();
      this.run(command);
    } else if (event.key.toLowerCase() === "k" && !event.shiftKey) {
      event.preventDefault();
      this.run("link");
    }
  };

  /* Pasted HTML kept to the small set; pasted text stays text. */
  Editor.prototype.paste = function (event) {
    var data = event.clipboardData;
    if (!data) {
      return;
    }
    event.preventDefault();
    var html = data.getData("text/html");
    if (!html) {
      document.execCommand("insertText", false, data.getData("text/plain"));
      return;
    }
    // Parsing it may log the page's policy refusing its event handlers and styles:
    // refused, they never run; the cleaning leaves them out anyway.
    var holder = document.createElement("div");
    setHtml(holder, html);
    // Inserted as cleaned (insertHTML would add style attributes of its own).
    var selection = window.getSelection();
    if (!selection.rangeCount) {
      return;
    }
    var range = selection.getRangeAt(0);
    range.deleteContents();
    var last = holder.lastChild;
    var pasted = document.createDocumentFragment();
    while (holder.firstChild) {
      pasted.appendChild(holder.firstChild);
    }
    range.insertNode(pasted);
    if (last) {
      range.setStartAfter(last);
      range.collapse(true);
      selection.removeAllRanges();
      selection.addRange(range);
    }
    this.area.dispatchEvent(new Event("input", { bubbles: true }));
  };

  /* The buttons show what applies where the cursor is. */
  Editor.prototype.update = function () {
    var selection = window.getSelection();
    if (!this.rich || !selection || !selection.rangeCount || !this.area.contains(selection.anchorNode)) {
      return;
    }
    var self = this;
    ["bold", "italic", "underline", "insertUnorderedList", "insertOrderedList"].forEach(function (name) {
      var on = false;
      try {
        on = document.queryCommandState(name);
      } catch (e) {
        on = false;
      }
      self.buttons[name].setAttribute("aria-pressed", on ? "true" : "false");
    });
    this.buttons.quote.setAttribute("aria-pressed", this.closest("BLOCKQUOTE") ? "true" : "false");
  };

  Editor.prototype.submit = function () {
    if (!this.rich) {
      this.hidden.value = "";
      return;
    }
    var clean = document.createElement("div");
    setHtml(clean, this.area.innerHTML);
    this.textarea.value = this.textOf(clean);
    this.hidden.value = hasContent(clean) ? clean.innerHTML : "";
  };

  /* The text alternative of the editor as it is now. */
  Editor.prototype.textOf = function (root) {
    return this.area.innerHTML === this.pair.html ? this.pair.text : toText(root);
  };

  function start() {
    var areas = document.querySelectorAll('textarea[data-editor="rich"]');
    Array.prototype.forEach.call(areas, function (textarea) {
      if (textarea.form && textarea.form.querySelector('input[name="' + textarea.name + '_html"]')) {
        try {
          document.execCommand("defaultParagraphSeparator", false, "div");
          document.execCommand("styleWithCSS", false, false);
        } catch (e) { /* older browsers: their defaults */ }
        new Editor(textarea);
      }
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
