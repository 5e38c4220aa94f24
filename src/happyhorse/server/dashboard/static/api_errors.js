// Put the API's own error message next to the form field it names.
//
// The API's 400 messages start with the field's path ("multi_prompt[1].duration must be an integer
// from 1 to 12"); form fields carry that path in data-field. The most specific visible field wins,
// then its parents (multi_prompt[1], multi_prompt), then a fallback by error_code; anything left
// goes to the form's general alert. Messages are set with textContent only.
"use strict";

window.HappyHorseErrors = (function () {
  const visible = (el) => !!(el && el.offsetParent !== null);

  // "multi_prompt[1].duration must be…" → multi_prompt[1].duration, multi_prompt[1], multi_prompt
  function pathsFor(message, errorCode) {
    const match = /^([A-Za-z_]+(?:\[\d+\])?(?:\.[A-Za-z_]+(?:\[\d+\])?)*)/.exec(message || "");
    const paths = [];
    let path = match ? match[1] : "";
    while (path) {
      paths.push(path);
      const shorter = /^(.*)(?:\.[A-Za-z_]+|\[\d+\])$/.exec(path);
      path = shorter ? shorter[1] : "";
    }
    if (errorCode === "INVALID_PROMPT") paths.push("prompt");
    if (errorCode === "INVALID_DURATION") paths.push("duration", "multi_prompt");
    return paths;
  }

  function fieldFor(root, paths) {
    const fields = Array.from(root.querySelectorAll("[data-field]"));
    for (const path of paths) {
      const field = fields.find((el) => el.dataset.field === path && visible(el));
      if (field) return field;
    }
    return null;
  }

  function showField(field, message) {
    const p = document.createElement("p");
    p.className = "field-error";
    p.dataset.jsError = "";
    p.setAttribute("role", "alert");
    p.textContent = message;
    field.appendChild(p);
    const input = field.querySelector("input:not([type=file]):not([type=radio]), textarea, select");
    if (input) input.setAttribute("aria-invalid", "true");
    field.scrollIntoView({ block: "center", behavior: "smooth" });
  }

  function showGeneral(alert, message) {
    alert.textContent = message;
    alert.classList.remove("hidden");
  }

  function clear(root, alert) {
    root.querySelectorAll("[data-js-error]").forEach((el) => el.remove());
    root.querySelectorAll("[aria-invalid=true]").forEach((el) => el.removeAttribute("aria-invalid"));
    alert.classList.add("hidden");
    alert.textContent = "";
  }

  // One failed API call: 401 goes to the key field, 400 to the field it names, the rest to the alert.
  function showApiError(root, alert, status, payload) {
    const message = (payload && payload.message) || `The server answered HTTP ${status}.`;
    const code = payload && payload.error_code;
    if (status === 401) {
      const keyField = fieldFor(root, ["api_key"]);
      if (keyField) return showField(keyField, message);
    }
    if (status === 400) {
      const field = fieldFor(root, pathsFor(message, code));
      if (field) {
        showField(field, message);
        return showGeneral(alert, "The API refused the request: see the highlighted field.");
      }
    }
    if (status === 402) return showGeneral(alert, `${message}. Ask an admin for credits.`);
    return showGeneral(alert, code ? `${message} (${code})` : message);
  }

  // Editing a field clears its error (and its enclosing fields' errors: a shot's duration edit clears
  // the "durations must add up" message on multi_prompt), never a sibling's.
  function clearOnEdit(event) {
    let field = event.target && event.target.closest ? event.target.closest("[data-field]") : null;
    if (field) field.querySelectorAll("[aria-invalid=true]").forEach((el) => el.removeAttribute("aria-invalid"));
    while (field) {
      field.querySelectorAll(":scope > [data-js-error]").forEach((el) => el.remove());
      field = field.parentElement ? field.parentElement.closest("[data-field]") : null;
    }
  }
  document.addEventListener("input", clearOnEdit);
  document.addEventListener("change", clearOnEdit);

  return { pathsFor, fieldFor, showField, showGeneral, clear, showApiError };
})();
