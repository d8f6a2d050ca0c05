// The live job panel (templates/admin/includes/job_panel.html): every figure is replaced together
// from one task report, pushed by the WebSocket /ws/jobs/<id>/ or, when that cannot open or
// drops, polled from /api/v1/tasks/<id> every 2 seconds. Stops once the job is finished.
(function () {
  "use strict";
  const panel = document.getElementById("job-panel");
  if (!panel) { return; }
  const FINISHED = ["completed", "partially_completed", "failed", "cancelled", "committed"];
  const MOVING = ["starting", "running", "processing"];  // a pace is shown only then
  const numbers = new Intl.NumberFormat("en-US");
  const rates = new Intl.NumberFormat("en-US", {minimumFractionDigits: 1, maximumFractionDigits: 1});
  let finished = FINISHED.includes(panel.dataset.status);

  function seconds(value) {
    if (value === null || value === undefined) { return "-"; }
    const s = Math.round(value);
    if (s < 60) { return `${s} s`; }
    if (s < 3600) { return `${Math.floor(s / 60)} min ${s % 60} s`; }
    return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
  }
  function label(status) {
    const words = status.replace(/_/g, " ");
    return words.charAt(0).toUpperCase() + words.slice(1);
  }
  function moment(value) {  // as the server writes it: 2026-11-30 04:11:47 UTC
    return value ? new Date(value).toISOString().replace("T", " ").slice(0, 19) + " UTC" : "-";
  }
  function set(name, text) {
    const node = panel.querySelector(`[data-field="${name}"]`);
    if (node) { node.textContent = text; }
    return node;
  }

  function show(job) {
    const result = job.result || {};
    panel.className = `job-panel status-${job.status}`;
    panel.dataset.status = job.status;
    set("status", label(job.status));
    set("progress", Number(job.progress).toFixed(1));
    document.getElementById("job-progress-bar").value = job.progress;
    panel.querySelectorAll("[data-result]").forEach(node => {
      const value = result[node.dataset.result];
      node.textContent = typeof value === "number" ? numbers.format(value) : (value ?? "-");
    });
    set("rate", MOVING.includes(job.status) ? `${rates.format(job.rate || 0)} ${job.rate_unit}/s` : "-");
    set("eta", seconds(job.eta_seconds));
    set("started_at", moment(job.started_at));
    set("finished_at", moment(job.finished_at));
    const error = set("error", job.error || "");
    if (error) { error.hidden = !job.error; }
    // A button or link is offered in the statuses it names and while its figure is above zero.
    panel.querySelectorAll("[data-when], [data-if-positive]").forEach(node => {
      const inStatus = !node.dataset.when || node.dataset.when.split(" ").includes(job.status);
      const positive = !node.dataset.ifPositive || result[node.dataset.ifPositive] > 0;
      node.hidden = !(inStatus && positive);
    });
    finished = FINISHED.includes(job.status);
    const live = set("live", "live");
    if (live) { live.hidden = finished; }
  }

  function poll() {
    fetch(panel.dataset.taskUrl, {credentials: "same-origin", headers: {"Accept": "application/json"}})
      .then(response => response.ok ? response.json() : Promise.reject(response.status))
      .then(job => { show(job); if (!finished) { setTimeout(poll, 2000); } })
      .catch(() => setTimeout(poll, 5000));
  }

  if (finished) { return; }
  try {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const socket = new WebSocket(`${scheme}://${location.host}/ws/jobs/${panel.dataset.jobId}/`);
    socket.onmessage = event => show(JSON.parse(event.data));
    socket.onclose = () => { if (!finished) { poll(); } };
  } catch (error) {
    poll();
  }
})();
