// HappyHorse dashboard: small progressive enhancements shared by every page.
// Rule: text from users or the API goes into the page with textContent, never innerHTML.
"use strict";

(function () {
  const $ = (sel, root = document) => root.querySelector(sel);
  const $$ = (sel, root = document) => Array.from(root.querySelectorAll(sel));
  const PLAYGROUND_KEY = "hh.playground.key";

  // --- a page that answers a POST: make reload a GET (see templating.render) ---------------------
  if (document.body.dataset.cleanUrl && window.history.replaceState) {
    window.history.replaceState(null, "", document.body.dataset.cleanUrl);
  }

  // --- copy buttons: <button data-copy="#selector"> copies that element's text --------------------
  async function copyText(text) {
    try {
      await navigator.clipboard.writeText(text);
      return true;
    } catch (_) {
      // Clipboard API needs a secure context; plain http on a LAN falls back to a hidden textarea.
      const area = document.createElement("textarea");
      area.value = text;
      area.setAttribute("readonly", "");
      area.style.position = "fixed";
      area.style.opacity = "0";
      document.body.appendChild(area);
      area.select();
      let ok = false;
      try { ok = document.execCommand("copy"); } catch (_) { ok = false; }
      area.remove();
      return ok;
    }
  }

  document.addEventListener("click", async (event) => {
    const button = event.target.closest("[data-copy]");
    if (!button) return;
    const source = $(button.dataset.copy);
    if (!source) return;
    const label = button.querySelector("span") || button;
    const before = label.textContent;
    label.textContent = (await copyText(source.textContent)) ? "Copied" : "Press Ctrl+C";
    button.classList.add("copied");
    setTimeout(() => { label.textContent = before; button.classList.remove("copied"); }, 1600);
  });

  // --- forms that ask first: <form data-confirm="Really?"> -----------------------------------------
  document.addEventListener("submit", (event) => {
    const form = event.target;
    if (form.dataset && form.dataset.confirm && !window.confirm(form.dataset.confirm)) {
      event.preventDefault();
    }
  });

  // --- "Use in Playground": the fresh key goes to this tab's sessionStorage, then the Playground ---
  $$("[data-use-key]").forEach((button) => {
    button.addEventListener("click", () => {
      const source = $(button.dataset.useKey);
      if (!source) return;
      sessionStorage.setItem(PLAYGROUND_KEY, source.textContent.trim());
      window.location.href = "/dashboard/playground";
    });
  });

  // --- times in the reader's own time zone -------------------------------------------------------
  const timeFormat = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });
  $$("time[datetime]").forEach((el) => {
    const value = el.getAttribute("datetime");
    if (!value) return;
    const date = new Date(value);
    if (!Number.isNaN(date.getTime())) el.textContent = timeFormat.format(date);
  });

  // --- admin: the "new account name" input only matters for a new account -------------------------
  $$("select[data-toggle-new]").forEach((select) => {
    const target = $(select.dataset.toggleNew);
    const sync = () => target && target.classList.toggle("hidden", select.selectedIndex !== 0);
    select.addEventListener("change", sync);
    sync();
  });

  // --- progress bars: width from aria-valuenow (inline styles are blocked by our CSP) -------------
  function setProgress(wrap, percent) {
    const bar = wrap && wrap.querySelector("span");
    if (!bar) return;
    wrap.setAttribute("aria-valuenow", String(percent));
    bar.style.width = `${Math.max(3, Math.min(100, percent))}%`;
  }
  $$("[data-role=progress-wrap]").forEach((wrap) => setProgress(wrap, Number(wrap.getAttribute("aria-valuenow")) || 0));

  // --- Tasks page: poll the running ones until they end ------------------------------------------
  const list = $("[data-poll-url]");
  const LABELS = { SUCCESS: "Succeeded", FAILED: "Failed", IN_PROGRESS: "Rendering" };
  const BADGES = { SUCCESS: "badge-ok", FAILED: "badge-bad", IN_PROGRESS: "badge-busy" };

  function drawBadge(badge, status) {
    badge.className = `badge ${BADGES[status] || ""}`;
    badge.textContent = "";
    if (status === "IN_PROGRESS") {
      const spin = document.createElement("span");
      spin.className = "spinner";
      spin.setAttribute("aria-hidden", "true");
      badge.appendChild(spin);
    }
    badge.appendChild(document.createTextNode(LABELS[status] || status));
  }

  function drawTask(row, task) {
    row.dataset.status = task.status;
    drawBadge(row.querySelector("[data-role=status]"), task.status);
    const wrap = row.querySelector("[data-role=progress-wrap]");
    setProgress(wrap, task.progress || 0);
    wrap.classList.toggle("hidden", task.status !== "IN_PROGRESS");
    row.querySelector("[data-role=credits]").textContent = Number(task.consumed_credits).toLocaleString("en-US");
    const error = row.querySelector("[data-role=error]");
    error.textContent = task.error_message || "";
    error.classList.toggle("hidden", !task.error_message);
    const media = row.querySelector(".task-media");
    if (task.status === "SUCCESS" && task.result_url && !media.querySelector("video")) {
      const video = document.createElement("video");
      video.className = "task-video";
      video.controls = true;
      video.muted = true;
      video.playsInline = true;
      video.preload = "metadata";
      video.src = task.result_url;
      media.replaceChildren(video);
    }
  }

  if (list) {
    let delay = 1500;
    let timer = null;
    let busy = false;
    const schedule = (ms) => { clearTimeout(timer); timer = setTimeout(poll, ms); };
    // One chain of polls at a time; paused while the tab is hidden, resumed when it is shown.
    async function poll() {
      const running = $$("[data-task-id][data-status=IN_PROGRESS]", list);
      if (!running.length || document.hidden || busy) return;
      busy = true;
      const ids = running.map((row) => row.dataset.taskId).join(",");
      try {
        const response = await fetch(`${list.dataset.pollUrl}?ids=${encodeURIComponent(ids)}`,
          { headers: { Accept: "application/json" }, credentials: "same-origin" });
        if (response.status === 401) return; // signed out elsewhere: stop quietly
        if (response.ok) {
          const body = await response.json();
          for (const task of body.tasks) {
            const row = list.querySelector(`[data-task-id="${CSS.escape(task.task_id)}"]`);
            if (row) drawTask(row, task);
          }
          delay = 1500;
        } else {
          delay = Math.min(delay * 2, 15000);
        }
      } catch (_) {
        delay = Math.min(delay * 2, 15000); // network hiccup: back off, keep going
      } finally {
        busy = false;
      }
      schedule(delay);
    }
    document.addEventListener("visibilitychange", () => { if (!document.hidden) schedule(0); });
    schedule(delay);
  }

  window.HappyHorse = { copyText, setProgress, drawBadge, PLAYGROUND_KEY };
})();
