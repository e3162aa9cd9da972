// The dashboard's charts (Chart.js), drawn from the figures the page embeds, refreshed every minute.
(function () {
  "use strict";

  const STATUS_COLOURS = {
    succeeded: "#2e7d32",
    terminated: "#00897b",
    failed: "#c62828",
    cancelled: "#8d8d8d",
    skipped: "#c0c6cc",
    running: "#1e88e5",
    queued: "#f9a825",
  };
  const PALETTE = ["#1e88e5", "#8e24aa", "#00897b", "#f4511e", "#6d4c41", "#3949ab", "#c0ca33", "#d81b60", "#90a4ae"];
  const REFRESH_MS = 60000;

  function hourLabel(iso) {
    return iso.slice(11, 16);
  }

  function dayLabel(iso) {
    return iso.slice(5, 10);
  }

  function statusDatasets(statuses) {
    return Object.keys(STATUS_COLOURS)
      .filter((status) => statuses[status] && statuses[status].some((value) => value > 0))
      .map((status) => ({
        label: status,
        data: statuses[status],
        backgroundColor: STATUS_COLOURS[status],
        stack: "runs",
      }));
  }

  function specs(data) {
    const workflows = data.workflows.filter((item) => item.p95_ms !== null);
    return {
      "chart-hours": {
        type: "bar",
        data: { labels: data.hours.labels.map(hourLabel), datasets: statusDatasets(data.hours.statuses) },
        options: { scales: { x: { stacked: true }, y: { stacked: true, beginAtZero: true, ticks: { precision: 0 } } } },
      },
      "chart-days": {
        type: "bar",
        data: {
          labels: data.days.labels.map(dayLabel),
          datasets: statusDatasets(data.days.statuses).concat([{
            type: "line",
            label: "failure rate (%)",
            data: data.days.failure_rate.map((rate) => (rate === null ? null : Math.round(rate * 1000) / 10)),
            borderColor: "#c62828",
            backgroundColor: "#c62828",
            yAxisID: "rate",
            spanGaps: true,
          }]),
        },
        options: {
          scales: {
            x: { stacked: true },
            y: { stacked: true, beginAtZero: true, ticks: { precision: 0 } },
            rate: { position: "right", min: 0, max: 100, grid: { drawOnChartArea: false } },
          },
        },
      },
      "chart-durations": {
        type: "bar",
        data: {
          labels: workflows.map((item) => item.name),
          datasets: [
            { label: "p50 (ms)", data: workflows.map((item) => item.p50_ms), backgroundColor: "#1e88e5" },
            { label: "p95 (ms)", data: workflows.map((item) => item.p95_ms), backgroundColor: "#f4511e" },
          ],
        },
        options: { indexAxis: "y", scales: { x: { beginAtZero: true } } },
      },
      "chart-wu": {
        type: "bar",
        data: {
          labels: data.days.labels.map(dayLabel),
          datasets: Object.keys(data.days.wu).map((name, index) => ({
            label: name,
            data: data.days.wu[name],
            backgroundColor: PALETTE[index % PALETTE.length],
            stack: "wu",
          })),
        },
        options: { scales: { x: { stacked: true }, y: { stacked: true, beginAtZero: true } } },
      },
    };
  }

  function draw(data) {
    const all = specs(data);
    Object.keys(all).forEach((id) => {
      const canvas = document.getElementById(id);
      if (!canvas) return;
      const spec = all[id];
      const existing = window.Chart.getChart(canvas);
      if (existing) {
        existing.data = spec.data;
        existing.update("none");
        return;
      }
      spec.options = Object.assign({ responsive: true, maintainAspectRatio: false, animation: false }, spec.options);
      new window.Chart(canvas, spec);
    });
  }

  function start() {
    const embedded = document.getElementById("dashboard-data");
    if (!embedded || !window.Chart) return;
    draw(JSON.parse(embedded.textContent));
    const script = document.querySelector("script[data-metrics-url]");
    const url = script && script.dataset.metricsUrl;
    if (!url) return;
    window.setInterval(() => {
      if (document.hidden) return;
      fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" })
        .then((response) => (response.ok ? response.json() : null))
        .then((data) => data && draw(data))
        .catch(() => {});
    }, REFRESH_MS);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
