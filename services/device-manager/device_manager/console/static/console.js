// IoT Hub console: htmx error toasts, bulk selection, device charts (uPlot). No build step.
(function () {
  "use strict";
  const TOAST_MS = 6000;

  function toast(html) {
    const box = document.getElementById("toasts");
    if (box) box.insertAdjacentHTML("beforeend", html);
  }

  function expireToasts(root) {
    root.querySelectorAll && root.querySelectorAll(".toast").forEach(function (el) {
      if (!el.dataset.timer) el.dataset.timer = setTimeout(function () { el.remove(); }, TOAST_MS);
    });
  }

  // htmx does not swap 4xx/5xx answers: show the server's message as a toast instead.
  document.addEventListener("htmx:responseError", function (e) {
    const text = e.detail.xhr.responseText || "";
    toast(text.indexOf("toast") >= 0 ? text : '<div class="toast error" role="alert">Failed: HTTP ' +
      e.detail.xhr.status + "</div>");
    expireToasts(document);
  });
  document.addEventListener("htmx:sendError", function () {
    toast('<div class="toast error" role="alert">The server did not answer; try again.</div>');
  });
  document.addEventListener("htmx:load", function (e) { expireToasts(document); });

  // Bulk selection on the devices list.
  document.addEventListener("change", function (e) {
    const table = e.target.closest("#devices-table");
    if (!table) return;
    if (e.target.matches("[data-select-all]")) {
      table.querySelectorAll("input[name=device_ids]").forEach(function (b) { b.checked = e.target.checked; });
    }
    const n = table.querySelectorAll("input[name=device_ids]:checked").length;
    const out = table.querySelector("[data-selected]");
    if (out) out.textContent = n;
  });

  // Device charts: one metric over a range, aggregated server-side (whole minutes come from the rollup).
  function drawChart(card) {
    const form = card.querySelector("[data-chart-form]");
    const plot = card.querySelector("[data-chart-plot]");
    const info = card.querySelector("[data-chart-info]");
    const query = new URLSearchParams(new FormData(form)).toString();
    info.textContent = "loading…";
    fetch(card.dataset.url + "?" + query, { headers: { "Accept": "application/json" }, credentials: "same-origin" })
      .then(function (r) { return r.json().then(function (body) { return { ok: r.ok, body: body }; }); })
      .then(function (res) {
        if (!res.ok) { info.textContent = "Could not load the chart"; return; }
        const body = res.body;
        plot.innerHTML = "";
        const width = Math.max(280, plot.clientWidth || card.clientWidth - 32);
        const opts = { width: width, height: 300, series: [{}, { label: body.metric + " (" + body.agg + ")",
          stroke: "#1f6feb", width: 1.5 }], axes: [{}, { label: body.unit || "" }],
          scales: { x: { time: true, range: [Date.parse(body.start) / 1000, Date.parse(body.end) / 1000] } } };
        plot._chart = new uPlot(opts, body.data, plot);
        plot.dataset.points = body.data[0].length;
        info.textContent = body.data[0].length + " of " + Math.round((Date.parse(body.end) - Date.parse(body.start)) /
          1000 / body.every_s) + " buckets of " + body.every_s + " s, " + body.agg;
      })
      .catch(function () { info.textContent = "Could not load the chart"; });
  }

  document.addEventListener("submit", function (e) {
    const card = e.target.closest("[data-chart]");
    if (card && e.target.matches("[data-chart-form]")) { e.preventDefault(); drawChart(card); }
  });
  document.addEventListener("DOMContentLoaded", function () {
    expireToasts(document);
    document.querySelectorAll("[data-chart]").forEach(function (card) {
      if (card.querySelector("select[name=metric] option")) drawChart(card);
    });
  });
})();
