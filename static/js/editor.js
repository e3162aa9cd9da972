// The workflow editor's page behaviour. The server does the real work (forms, validation, runs);
// this file moves rows around, keeps unsaved work from being lost, and shows check results by each field.
(function () {
  "use strict";

  // --- Every page that loads this file: copy buttons and simple row lists ------------------------------
  function selectText(element) {
    const range = document.createRange();
    range.selectNodeContents(element);
    const selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
  }

  function say(text) {
    const box = document.getElementById("editor-announce");
    if (box) {
      box.textContent = "";
      window.setTimeout(function () { box.textContent = text; }, 30);
    }
  }

  document.addEventListener("click", function (event) {
    const button = event.target.closest("[data-copy]");
    if (!button) return;
    const source = document.getElementById(button.dataset.copy);
    if (!source) return;
    const done = function () { say("Copied"); button.dataset.copied = "true"; };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(source.textContent).then(done, function () { selectText(source); });
    } else {
      // Without a secure context there is no clipboard API: select the text for Ctrl+C.
      selectText(source);
      button.dataset.copied = "selected";
      say("Selected: press Ctrl+C to copy");
    }
  });

  // Row lists outside the editor (a data type's fields): add from a <template>, move, remove.
  document.addEventListener("click", function (event) {
    const button = event.target.closest("button");
    if (!button || button.closest("#editor")) return;
    if (button.dataset.addFrom) {
      const html = document.getElementById(button.dataset.addFrom).innerHTML;
      const uid = Math.random().toString(16).slice(2, 10);
      const holder = document.createElement("div");
      holder.innerHTML = html.split("__uid__").join(uid);
      const row = holder.firstElementChild;
      document.getElementById(button.dataset.addTo).appendChild(row);
      const first = row.querySelector("input[type=text]");
      if (first) first.focus();
      return;
    }
    const row = button.closest(".rows-editor [data-row]");
    if (!row) return;
    if (button.dataset.move) {
      const sibling = button.dataset.move === "up" ? row.previousElementSibling : row.nextElementSibling;
      if (sibling) {
        if (button.dataset.move === "up") sibling.before(row); else sibling.after(row);
        button.focus();
      }
    } else if (button.hasAttribute("data-remove-row")) {
      const next = row.nextElementSibling || row.previousElementSibling;
      row.remove();
      const focusable = next && next.querySelector("input[type=text]");
      if (focusable) focusable.focus();
    }
  });

  // --- The workflow editor -----------------------------------------------------------------------------
  const form = document.getElementById("editor");
  if (!form) return;
  const canEdit = form.dataset.canEdit === "true";
  const announcer = document.getElementById("editor-announce");
  const dirtyState = document.getElementById("dirty-state");
  const touched = new Set();
  let dirty = false;
  let submitting = false;
  let lastExpression = null;
  let undo = null;

  function announce(text) {
    // Clearing first makes screen readers repeat an identical message.
    announcer.textContent = "";
    window.setTimeout(function () { announcer.textContent = text; }, 30);
  }

  function isTestInput(element) {
    return element.hasAttribute && (element.hasAttribute("data-no-dirty") || (element.name || "").startsWith("t-"));
  }

  // --- Unsaved changes -------------------------------------------------------------------------------
  function markDirty() {
    if (!canEdit) return;
    dirty = true;
    form.classList.add("is-dirty");
    dirtyState.textContent = "Unsaved changes";
  }

  window.addEventListener("beforeunload", function (event) {
    if (dirty && !submitting) {
      event.preventDefault();
      event.returnValue = "";
    }
  });
  form.addEventListener("submit", function () { submitting = true; });

  // --- Checking as you type ------------------------------------------------------------------------
  function requestCheck() {
    document.body.dispatchEvent(new CustomEvent("editorcheck"));
  }

  let paramsTimer = null;
  function paramsChanged() {
    window.clearTimeout(paramsTimer);
    paramsTimer = window.setTimeout(function () {
      document.body.dispatchEvent(new CustomEvent("paramschanged"));
    }, 50);
  }

  function errorKey(element) {
    return element.dataset.errorFor || element.name || element.id;
  }

  form.addEventListener("input", function (event) {
    const target = event.target;
    if (isTestInput(target)) return;
    touched.add(errorKey(target));
    markDirty();
    requestCheck();
  });
  form.addEventListener("change", function (event) {
    const target = event.target;
    if (isTestInput(target)) return;
    touched.add(errorKey(target));
    markDirty();
    requestCheck();
    if (target.closest("#param-list")) paramsChanged();
    if (target.name === "auth" || target.name === "response") showDependentFields();
  });
  form.addEventListener("focusin", function (event) {
    if (event.target.classList && event.target.classList.contains("expr")) lastExpression = event.target;
  });

  function setMessage(id, text) {
    const box = document.getElementById(id);
    if (box) box.textContent = text || "";
    return box;
  }

  // Errors show next to fields the reader has touched; a field already showing one is updated
  // or cleared, so a fixed problem disappears as soon as it is fixed.
  function applyCheck(payload, showAll) {
    const errors = payload.errors || {};
    const warnings = payload.warnings || {};
    form.querySelectorAll(".field-error[id$='-error']").forEach(function (box) {
      const key = box.id.slice(0, -"-error".length);
      if (key.startsWith("t-")) return;
      const message = errors[key] || "";
      const found = document.getElementById(key);
      const input = found && found.matches("input, select, textarea, fieldset") ? found : null;
      if (message && (showAll || touched.has(key) || box.textContent.trim())) {
        box.textContent = message;
        if (input) input.setAttribute("aria-invalid", "true");
      } else if (!message) {
        box.textContent = "";
        if (input) input.removeAttribute("aria-invalid");
      }
    });
    form.querySelectorAll(".field-warning[id$='-warning']").forEach(function (box) {
      box.textContent = warnings[box.id.slice(0, -"-warning".length)] || "";
    });
    Object.entries(payload.scope || {}).forEach(function (entry) {
      const chips = document.querySelector("#scope-" + entry[0] + " .chips");
      if (!chips) return;
      chips.replaceChildren.apply(chips, entry[1].map(function (name) {
        const chip = document.createElement("button");
        chip.type = "button";
        chip.className = "chip";
        chip.dataset.insert = name;
        chip.title = "Insert {{ " + name + " }}";
        chip.textContent = name;
        return chip;
      }));
    });
  }

  function readPayload(id) {
    const script = document.getElementById(id);
    return script ? JSON.parse(script.textContent) : null;
  }

  document.body.addEventListener("htmx:afterSwap", function (event) {
    const target = event.detail.target;
    if (target.id === "check-status") {
      const payload = readPayload("check-data");
      if (payload) applyCheck(payload, false);
    } else if (target.id === "run-result") {
      const refused = readPayload("run-check-data");
      if (refused) applyCheck(refused, true);
      target.scrollIntoView({ block: "nearest" });
    } else if (target.id === "step-list" || target.closest && target.closest("#step-list")) {
      structureChanged("step");
    } else if (target.id === "param-list") {
      structureChanged("parameter");
    }
  });

  // New cards and rows arrive through htmx: focus their first input so typing can start at once.
  document.body.addEventListener("htmx:afterSettle", function (event) {
    const fresh = document.querySelector(".step.is-new, .param-row.is-new");
    if (!fresh) return;
    fresh.classList.remove("is-new");
    // The catalogue closes once a step is added, so the new card is not pushed out of sight.
    const catalogue = document.getElementById("catalogue");
    if (catalogue && fresh.classList.contains("step")) catalogue.open = false;
    const first = fresh.querySelector(fresh.classList.contains("step") ? ".step-fields input, .step-fields textarea, .step-fields select, .key-input" : "input[type=text]");
    fresh.scrollIntoView({ block: "nearest" });
    if (first) first.focus();
    announce(fresh.classList.contains("step") ? "Step added: " + fresh.querySelector(".step-title").textContent.trim() : "Parameter added");
  });

  function updateEmptyNotes() {
    document.getElementById("steps-empty").hidden = !!document.querySelector("#step-list .step");
    document.getElementById("param-empty").hidden = !!document.querySelector("#param-list .param-row");
  }

  function structureChanged(kind) {
    markDirty();
    requestCheck();
    updateEmptyNotes();
    if (kind === "parameter") paramsChanged();
  }

  // --- Moving, removing, duplicating ------------------------------------------------------------------
  function itemOf(element) {
    return element.closest(".step, .param-row");
  }

  function describe(item) {
    if (item.classList.contains("step")) {
      const key = item.querySelector(".key-input").value || item.querySelector(".key-input").placeholder;
      return "Step " + key;
    }
    return "Parameter " + (item.querySelector("input[type=text]").value || "(unnamed)");
  }

  function position(item) {
    return Array.prototype.indexOf.call(item.parentElement.children, item) + 1;
  }

  form.addEventListener("click", function (event) {
    const button = event.target.closest("button");
    if (!button || !form.contains(button)) return;
    if (button.dataset.move) {
      const item = itemOf(button);
      const sibling = button.dataset.move === "up" ? item.previousElementSibling : item.nextElementSibling;
      if (!sibling) {
        announce(describe(item) + " is already " + (button.dataset.move === "up" ? "first" : "last"));
        return;
      }
      if (button.dataset.move === "up") sibling.before(item); else sibling.after(item);
      button.focus();
      announce(describe(item) + " moved to position " + position(item) + " of " + item.parentElement.children.length);
      structureChanged(item.classList.contains("step") ? "step" : "parameter");
    } else if (button.dataset.remove) {
      const item = itemOf(button);
      const label = describe(item);
      undo = { item: item, parent: item.parentElement, next: item.nextElementSibling };
      item.remove();
      showUndo(label + " removed (not saved yet).");
      structureChanged(button.dataset.remove === "step" ? "step" : "parameter");
    } else if (button.hasAttribute("data-add-row")) {
      const mapping = button.closest(".mapping");
      const row = mapping.querySelector("template").content.firstElementChild.cloneNode(true);
      mapping.querySelector(".mapping-rows").appendChild(row);
      row.querySelector("input").focus();
      markDirty();
    } else if (button.hasAttribute("data-remove-row")) {
      const row = button.closest(".mapping-row");
      const rows = row.parentElement;
      const next = row.nextElementSibling || row.previousElementSibling;
      row.remove();
      const focusable = next ? next.querySelector("input") : rows.closest(".mapping").querySelector("[data-add-row]");
      if (focusable) focusable.focus();
      markDirty();
      requestCheck();
    } else if (button.dataset.insert) {
      insertName(button);
    } else if (button.hasAttribute("data-accept-detected")) {
      acceptDetected();
    } else if (button.id === "undo-remove") {
      restoreRemoved();
    } else if (button.id === "compact-toggle") {
      // Titles only: long cards become one line each, easy to reorder; the inputs stay in the form.
      const compact = button.getAttribute("aria-pressed") !== "true";
      button.setAttribute("aria-pressed", String(compact));
      button.textContent = compact ? "Show whole steps" : "Show only step titles";
      document.getElementById("step-list").classList.toggle("compact", compact);
    }
  });

  function showUndo(text) {
    let bar = document.getElementById("undo-bar");
    if (!bar) {
      bar = document.createElement("div");
      bar.id = "undo-bar";
      bar.className = "undo-bar";
      bar.setAttribute("role", "status");
      document.querySelector(".save-bar").prepend(bar);
    }
    bar.innerHTML = "";
    const message = document.createElement("span");
    message.textContent = text + " ";
    const button = document.createElement("button");
    button.type = "button";
    button.id = "undo-remove";
    button.className = "secondary outline small";
    button.textContent = "Undo";
    button.addEventListener("click", restoreRemoved);
    bar.append(message, button);
    announce(text);
  }

  function restoreRemoved() {
    if (!undo) return;
    if (undo.next && undo.next.parentElement === undo.parent) undo.parent.insertBefore(undo.item, undo.next);
    else undo.parent.appendChild(undo.item);
    const item = undo.item;
    undo = null;
    const bar = document.getElementById("undo-bar");
    if (bar) bar.remove();
    structureChanged(item.classList.contains("step") ? "step" : "parameter");
    const first = item.querySelector("input[type=text]");
    if (first) first.focus();
    announce(describe(item) + " restored");
  }

  // Clicking a name in scope writes {{ name }} where the caret was in this step's last expression field.
  function insertName(button) {
    const text = "{{ " + button.dataset.insert + " }}";
    const step = button.closest(".step");
    const field = lastExpression && step && step.contains(lastExpression) && !lastExpression.disabled ? lastExpression : null;
    if (!field) {
      if (navigator.clipboard) navigator.clipboard.writeText(text).catch(function () {});
      announce("Copied " + text + ": click into a field of this step first to insert it there");
      return;
    }
    const start = field.selectionStart ?? field.value.length;
    const end = field.selectionEnd ?? field.value.length;
    field.setRangeText(text, start, end, "end");
    field.focus();
    field.dispatchEvent(new Event("input", { bubbles: true }));
  }

  // --- Detect data -----------------------------------------------------------------------------------
  function acceptDetected() {
    const template = document.getElementById("detected-rows");
    if (!template) return;
    const list = document.getElementById("param-list");
    const existing = {};
    list.querySelectorAll(".param-row").forEach(function (row) {
      existing[row.querySelector("input[name$='-name']").value] = row;
    });
    let added = 0, updated = 0;
    Array.from(template.content.children).forEach(function (proposed) {
      const name = proposed.querySelector("input[name$='-name']").value;
      const current = existing[name];
      if (current) {
        current.querySelector("select[name$='-type']").value = proposed.querySelector("select[name$='-type']").value;
        current.querySelector("input[name$='-list']").checked = proposed.querySelector("input[name$='-list']").checked;
        updated += 1;
      } else {
        const row = proposed.cloneNode(true);
        row.classList.remove("is-new");
        list.appendChild(row);
        added += 1;
      }
    });
    document.getElementById("detect").innerHTML = "<p>Parameters accepted: " + added + " added, " + updated +
      " updated. Save to keep them.</p>";
    structureChanged("parameter");
    announce(added + " parameters added, " + updated + " updated; save to keep them");
  }

  // --- Settings that only apply to some modes --------------------------------------------------------
  function showDependentFields() {
    const auth = form.elements.auth ? form.elements.auth.value : "";
    const response = form.elements.response ? form.elements.response.value : "";
    form.querySelectorAll("[data-show-for]").forEach(function (field) {
      const modes = field.dataset.showFor.split(" ");
      const shown = modes.includes(auth) || modes.includes(response);
      // A field with a value or a problem stays visible, so nothing typed is ever hidden.
      const input = field.querySelector("input, select, textarea");
      field.hidden = !shown && !(input && input.value) && !field.querySelector(".field-error:not(:empty)");
    });
  }

  // --- Drag and drop ------------------------------------------------------------------------------------
  function sortable(list, kind) {
    if (!list || !window.Sortable || !canEdit) return;
    // forceFallback: Sortable moves the element itself on mouse events instead of relying on the
    // browser's native drag and drop, which behaves the same in every browser and under automation.
    window.Sortable.create(list, {
      handle: ".drag-handle",
      animation: 120,
      forceFallback: true,
      fallbackOnBody: true,
      ghostClass: "drag-ghost",
      onEnd: function (event) {
        if (event.oldIndex === event.newIndex) return;
        announce(describe(event.item) + " moved to position " + (event.newIndex + 1));
        structureChanged(kind);
      },
    });
  }

  function start() {
    sortable(document.getElementById("step-list"), "step");
    sortable(document.getElementById("param-list"), "parameter");
    updateEmptyNotes();
    showDependentFields();
    const payload = readPayload("check-data");
    if (payload) applyCheck(payload, form.dataset.showErrors === "true");
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
