// The API Playground: a form for every /api/generate field, a live preview of the exact request,
// the cost before submitting, then submit → watch /api/status → play the result.
//
// It calls this server's real API with the user's API key (Bearer), exactly like the curl preview,
// so what works here works from their code. Limits and credit rates come from the server's own
// tables, rendered into #playground-config. User text only ever reaches the page via textContent.
"use strict";

(function () {
  const $ = (sel, root = document) => root.querySelector(sel);
  const $$ = (sel, root = document) => Array.from(root.querySelectorAll(sel));
  const cfg = JSON.parse($("#playground-config").textContent);
  const KEY_STORE = (window.HappyHorse && window.HappyHorse.PLAYGROUND_KEY) || "hh.playground.key";

  const form = $("#pg-form");
  const keyInput = $("#pg-key");
  const promptInput = $("#pg-prompt");
  const multiToggle = $("#pg-multi");
  const durationInput = $("#pg-duration");
  const durationRange = $("#pg-duration-range");
  const cfgInput = $("#pg-cfg");
  const shotsList = $("#pg-shots");
  const imagesList = $("#pg-images");
  const elementsBox = $("#pg-elements");
  const submitButton = $("#pg-submit");
  const generalError = $("#pg-error");
  let previewTab = "curl";
  let watching = null; // the task id being watched; a new submit replaces it

  // --- small helpers ------------------------------------------------------------------------------
  const isMulti = () => multiToggle.checked;
  const radio = (name) => (form.querySelector(`input[name="${name}"]:checked`) || {}).value;
  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
  const fmt = (n) => Number(n).toLocaleString("en-US");

  // A typed number as the API should see it: digits → integer; blank → absent; anything else
  // as typed, so the API (not this page) decides and explains what is wrong with it.
  function intOrRaw(text) {
    const value = String(text).trim();
    if (value === "") return undefined;
    return /^-?\d+$/.test(value) ? Number(value) : value;
  }

  function clone(id) {
    return $(id).content.firstElementChild.cloneNode(true);
  }

  // --- API key ------------------------------------------------------------------------------------
  keyInput.value = sessionStorage.getItem(KEY_STORE) || "";
  keyInput.addEventListener("input", () => sessionStorage.setItem(KEY_STORE, keyInput.value.trim()));
  $("#pg-key-toggle").addEventListener("click", (event) => {
    const show = keyInput.type === "password";
    keyInput.type = show ? "text" : "password";
    event.currentTarget.textContent = show ? "Hide" : "Show";
  });
  const authHeaders = () => ({ Authorization: `Bearer ${keyInput.value.trim()}` });

  // --- shots --------------------------------------------------------------------------------------
  function addShot(prompt = "", duration = 3) {
    if (shotsList.children.length >= cfg.maxShots) return;
    const shot = clone("#tpl-shot");
    shot.querySelector("textarea").value = prompt;
    shot.querySelector("input").value = String(duration);
    shot.querySelector("[data-remove]").addEventListener("click", () => { shot.remove(); changed(); });
    shotsList.appendChild(shot);
    changed();
  }
  $("#pg-add-shot").addEventListener("click", () => addShot());

  // --- image URL rows (input images and element images share them) -------------------------------
  function urlRow(onRemove) {
    const row = clone("#tpl-url");
    const input = row.querySelector("input[type=url]");
    const thumb = row.querySelector(".thumb");
    input.addEventListener("change", () => showThumb(thumb, input.value));
    thumb.addEventListener("error", () => thumb.classList.add("hidden"));
    row.querySelector("input[type=file]").addEventListener("change", (event) => upload(event.target, row));
    row.querySelector("[data-remove]").addEventListener("click", () => { row.remove(); onRemove(); changed(); });
    return row;
  }

  function showThumb(thumb, url) {
    const ok = /^https?:\/\/\S+$/i.test(url.trim());
    thumb.classList.toggle("hidden", !ok);
    if (ok) thumb.src = url.trim();
    else thumb.removeAttribute("src");
  }

  const maxImages = () => (isMulti() ? cfg.maxImages.multi : cfg.maxImages.single);
  function addImage() {
    if (imagesList.children.length >= maxImages()) return;
    imagesList.appendChild(urlRow(() => {}));
    changed();
  }
  $("#pg-add-image").addEventListener("click", addImage);

  // --- elements -----------------------------------------------------------------------------------
  function addElement() {
    if (elementsBox.children.length >= cfg.maxElements) return;
    const element = clone("#tpl-element");
    const urls = element.querySelector(".el-urls");
    const addUrl = () => {
      if (urls.children.length < cfg.elementUrls[1]) urls.appendChild(urlRow(() => {}));
      changed();
    };
    element.querySelector(".el-add-url").addEventListener("click", addUrl);
    element.querySelector("[data-remove]").addEventListener("click", () => { element.remove(); changed(); });
    element.querySelector(".el-name").value = `element_${elementsBox.children.length + 1}`;
    elementsBox.appendChild(element);
    for (let i = 0; i < cfg.elementUrls[0]; i++) urls.appendChild(urlRow(() => {}));
    changed();
  }
  $("#pg-add-element").addEventListener("click", addElement);

  // --- data-field paths: the names the API's error messages use ----------------------------------
  function renumber() {
    $$(".shot", shotsList).forEach((shot, i) => {
      shot.dataset.field = `multi_prompt[${i}]`;
      shot.querySelector(".shot-n").textContent = `Shot ${i + 1}`;
      $$("[data-sub]", shot).forEach((f) => { f.dataset.field = `multi_prompt[${i}].${f.dataset.sub}`; });
      shot.querySelector("[data-remove]").disabled = shotsList.children.length <= 1;
    });
    $$(".url-row", imagesList).forEach((row, i) => {
      row.dataset.field = `image_urls[${i}]`;
      row.querySelector(".url-label").textContent = i === 0 ? "First frame" : "Last frame";
    });
    $$(".element", elementsBox).forEach((element, i) => {
      const base = `happyhorse_elements[${i}]`;
      element.dataset.field = base;
      element.querySelector(".element-title").textContent = `Element ${i + 1}`;
      $$("[data-sub]", element).forEach((f) => { f.dataset.field = `${base}.${f.dataset.sub}`; });
      $$(".url-row", element).forEach((row, j) => {
        row.dataset.field = `${base}.element_input_urls[${j}]`;
        row.querySelector(".url-label").textContent = `Image ${j + 1}`;
      });
      const name = element.querySelector(".el-name").value.trim();
      element.querySelector(".el-ref").textContent = name ? `Write @${name} in the prompt to use it.` : "";
      element.querySelector(".el-add-url").disabled = $$(".url-row", element).length >= cfg.elementUrls[1];
    });
  }

  // --- the request body, exactly as it will be sent -----------------------------------------------
  function urlsIn(root) {
    return $$(".url-row input[type=url]", root).map((i) => i.value.trim()).filter(Boolean);
  }

  function buildBody() {
    const multi = isMulti();
    const body = { model: cfg.model };
    const prompt = promptInput.value;
    if (!multi || prompt.trim()) body.prompt = prompt;
    body.mode = radio("mode");
    if (multi) {
      body.multi_shots = true;
      body.multi_prompt = $$(".shot", shotsList).map((shot) => {
        const one = { prompt: shot.querySelector("textarea").value };
        const duration = intOrRaw(shot.querySelector("input").value);
        if (duration !== undefined) one.duration = duration;
        return one;
      });
      // duration is left out: the API takes the shots' sum, and a wrong sum then gets the clearer
      // "multi_prompt durations must add up to…" message instead of one about a field not on screen.
    } else {
      const duration = intOrRaw(durationInput.value);
      if (duration !== undefined) body.duration = duration;
    }
    body.aspect_ratio = radio("aspect_ratio");
    body.sound = $("#pg-sound").checked;
    body.cfg_scale = Number(cfgInput.value);
    const seed = intOrRaw($("#pg-seed").value);
    if (seed !== undefined) body.seed = seed;
    const images = urlsIn(imagesList);
    if (images.length) body.image_urls = images;
    const elements = $$(".element", elementsBox).map((element) => {
      const one = { name: element.querySelector(".el-name").value.trim() };
      const description = element.querySelector(".el-desc").value.trim();
      if (description) one.description = description;
      one.element_input_urls = urlsIn(element);
      return one;
    });
    if (elements.length) body.happyhorse_elements = elements;
    const negative = $("#pg-negative").value;
    if (negative.trim()) body.negative_prompt = negative;
    return body;
  }

  function shotsTotal() {
    let total = 0;
    for (const input of $$(".shot input", shotsList)) {
      const value = intOrRaw(input.value);
      if (typeof value !== "number") return null;
      total += value;
    }
    return total;
  }

  const shellQuote = (text) => `'${text.replace(/'/g, "'\\''")}'`;

  function curlFor(body) {
    return [
      `curl -X POST ${shellQuote(`${cfg.baseUrl}/api/generate`)} \\`,
      `  -H "Authorization: Bearer $HAPPYHORSE_API_KEY" \\`,
      `  -H 'Content-Type: application/json' \\`,
      `  -d ${shellQuote(JSON.stringify(body, null, 2))}`,
    ].join("\n");
  }

  // --- cost: the server's own rate table × seconds ---------------------------------------------------
  function cost(body) {
    const rate = cfg.rates[body.mode] && cfg.rates[body.mode][String(body.sound)];
    const seconds = isMulti() ? shotsTotal() : body.duration === undefined ? cfg.defaultDuration : body.duration;
    if (!rate || typeof seconds !== "number") return null;
    return { rate, seconds, credits: rate * seconds };
  }

  // --- redraw everything that follows from the form ------------------------------------------------
  function changed() {
    const multi = isMulti();
    $("#pg-shots-wrap").classList.toggle("hidden", !multi);
    $("#pg-duration-field").classList.toggle("hidden", multi);
    $("#pg-prompt-label").textContent = multi ? "Shared context (optional)" : "Prompt";
    while (imagesList.children.length > maxImages()) imagesList.lastElementChild.remove();
    $("#pg-add-image").disabled = imagesList.children.length >= maxImages();
    $("#pg-images-note").textContent = multi ? "first frame of the first shot" : "first frame, last frame";
    $("#pg-add-shot").disabled = shotsList.children.length >= cfg.maxShots;
    $("#pg-add-element").disabled = elementsBox.children.length >= cfg.maxElements;
    $("#pg-aspect-hint").classList.toggle("hidden", !urlsIn(imagesList).length);
    renumber();

    const limit = cfg.promptMax;
    const counter = $("#pg-prompt-count");
    counter.textContent = `${[...promptInput.value].length} / ${fmt(limit)}`;
    counter.classList.toggle("over", [...promptInput.value].length > limit);
    const total = shotsTotal();
    $("#pg-total").textContent = total === null ? "—" : String(total);
    $("#pg-cfg-out").textContent = Number(cfgInput.value).toFixed(2);

    const body = buildBody();
    const price = cost(body);
    $("#pg-cost").textContent = price ? fmt(price.credits) : "—";
    $("#pg-cost-detail").textContent = price ? `${price.rate}/s × ${price.seconds} s (${body.mode}, ${body.sound ? "with sound" : "silent"})` : "Set a valid duration to see the cost.";
    $("#pg-preview").textContent = previewTab === "curl" ? curlFor(body) : JSON.stringify(body, null, 2);
  }

  form.addEventListener("input", (event) => {
    if (event.target === durationRange) durationInput.value = durationRange.value;
    if (event.target === durationInput && /^\d+$/.test(durationInput.value)) durationRange.value = durationInput.value;
    if (event.target.type !== "file") changed();
  });
  form.addEventListener("change", (event) => { if (event.target.type !== "file") changed(); });
  multiToggle.addEventListener("change", () => {
    if (isMulti() && !shotsList.children.length) { addShot("", 3); addShot("", 2); }
    changed();
  });
  $$(".tab").forEach((tab) => tab.addEventListener("click", () => {
    previewTab = tab.dataset.tab;
    $$(".tab").forEach((t) => { t.classList.toggle("active", t === tab); t.setAttribute("aria-selected", String(t === tab)); });
    changed();
  }));

  // --- errors: the API's own message next to the field it names (static/api_errors.js) ------------
  const errors = window.HappyHorseErrors;
  const root = document.querySelector(".playground");
  const clearErrors = () => errors.clear(root, generalError);
  const showFieldError = (field, message) => errors.showField(field, message);
  const showGeneral = (message) => errors.showGeneral(generalError, message);
  const showApiError = (status, payload) => errors.showApiError(root, generalError, status, payload);

  // --- uploads ------------------------------------------------------------------------------------------
  async function upload(fileInput, row) {
    const file = fileInput.files && fileInput.files[0];
    fileInput.value = "";
    if (!file) return;
    $$("[data-js-error]", row).forEach((el) => el.remove());
    if (!keyInput.value.trim()) {
      showFieldError(row, "Paste an API key above first: uploads use it too.");
      return;
    }
    const button = row.querySelector(".upload-btn");
    const label = button.firstChild;
    label.textContent = "Uploading…";
    try {
      const data = new FormData();
      data.append("file", file);
      const response = await fetch("/api/upload", { method: "POST", headers: authHeaders(), body: data });
      const payload = await response.json().catch(() => null);
      if (!response.ok || !payload || payload.code !== 200) {
        showFieldError(row, (payload && payload.message) || `Upload failed (HTTP ${response.status}).`);
        return;
      }
      const input = row.querySelector("input[type=url]");
      input.value = payload.data.url;
      showThumb(row.querySelector(".thumb"), input.value);
      changed();
    } catch (_) {
      showFieldError(row, "Could not reach the server to upload.");
    } finally {
      label.textContent = "Upload";
    }
  }

  // --- submit and watch ----------------------------------------------------------------------------------
  async function refreshBalance() {
    try {
      const response = await fetch("/api/credits", { headers: authHeaders() });
      if (response.ok) $("#pg-balance").textContent = fmt((await response.json()).data.balance);
    } catch (_) { /* the balance is a nicety */ }
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors();
    if (!keyInput.value.trim()) {
      showFieldError($("[data-field=api_key]"), "Paste an API key first, or create one on the API Keys page.");
      return;
    }
    submitButton.disabled = true;
    submitButton.textContent = "Submitting…";
    try {
      const response = await fetch("/api/generate", {
        method: "POST",
        headers: { ...authHeaders(), "Content-Type": "application/json" },
        body: JSON.stringify(buildBody()),
      });
      const payload = await response.json().catch(() => null);
      if (!response.ok || !payload || payload.code !== 200) {
        showApiError(response.status, payload);
        return;
      }
      refreshBalance();
      watch(payload.data.task_id);
    } catch (_) {
      showGeneral("Could not reach the server. Check your connection and try again.");
    } finally {
      submitButton.disabled = false;
      submitButton.textContent = "Generate video";
    }
  });

  function drawStatus(task) {
    const badge = $("#pg-status");
    if (window.HappyHorse) window.HappyHorse.drawBadge(badge, task.status);
    else badge.textContent = task.status;
    const bar = $("#pg-progress");
    bar.style.width = `${Math.max(3, task.status === "SUCCESS" ? 100 : task.progress || 0)}%`;
    $("#pg-progress-wrap").classList.toggle("hidden", task.status !== "IN_PROGRESS");
  }

  // Polls quickly: this is a person watching one task on their own server. Production code should
  // follow the docs' calmer schedule (first check after ~8 s, then every 10–20 s).
  async function watch(taskId) {
    watching = taskId;
    $("#pg-result").classList.remove("hidden");
    $("#pg-task-id").textContent = taskId;
    $("#pg-task-link").href = `/dashboard/tasks#${encodeURIComponent(taskId)}`;
    $("#pg-seed-line").classList.add("hidden");
    $("#pg-video-wrap").replaceChildren();
    $("#pg-task-error").classList.add("hidden");
    drawStatus({ status: "IN_PROGRESS", progress: 0 });
    $("#pg-result").scrollIntoView({ block: "nearest", behavior: "smooth" });
    let delay = 800;
    const deadline = Date.now() + 15 * 60 * 1000;
    while (watching === taskId && Date.now() < deadline) {
      await sleep(delay);
      let response;
      try {
        response = await fetch(`/api/status?task_id=${encodeURIComponent(taskId)}`, { headers: authHeaders() });
      } catch (_) {
        delay = Math.min(delay * 2, 20000);
        continue;
      }
      if (response.status === 429) { delay = Math.min(delay * 2, 20000); continue; }
      const payload = await response.json().catch(() => null);
      if (!response.ok || !payload) {
        showGeneral((payload && payload.message) || `Status check failed (HTTP ${response.status}).`);
        return;
      }
      const task = payload.data;
      if (watching !== taskId) return;
      drawStatus(task);
      if (task.seed !== undefined && task.seed !== null) {
        $("#pg-task-seed").textContent = String(task.seed);
        $("#pg-seed-line").classList.remove("hidden");
      }
      if (task.status === "SUCCESS") {
        const video = document.createElement("video");
        video.controls = true;
        video.autoplay = true;
        video.muted = true;
        video.loop = true;
        video.playsInline = true;
        video.preload = "auto";
        video.src = task.response.resultUrls[0];
        video.dataset.test = "pg-video";
        $("#pg-video-wrap").replaceChildren(video);
        return;
      }
      if (task.status === "FAILED") {
        const error = $("#pg-task-error");
        error.textContent = task.error_message || "The task failed.";
        error.classList.remove("hidden");
        refreshBalance(); // refunded
        return;
      }
      delay = Math.min(delay + 400, 4000);
    }
  }

  $("#pg-reuse-seed").addEventListener("click", () => {
    $("#pg-seed").value = $("#pg-task-seed").textContent;
    changed();
  });

  // --- start --------------------------------------------------------------------------------------------
  addImage();
  changed();
})();
