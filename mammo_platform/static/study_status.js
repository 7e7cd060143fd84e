// Polls the study's status while analyses run, updating each image in place; reloads once when all are done so
// results and heatmaps render in full.
(function () {
  const container = document.getElementById("images");
  if (!container) return;
  const url = container.dataset.statusUrl;
  let delay = 1500;
  async function poll() {
    let data;
    try {
      const response = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } });
      if (!response.ok) return;
      data = await response.json();
    } catch (err) {
      setTimeout(poll, delay * 2);
      return;
    }
    let changed = false;
    for (const image of data.images) {
      const card = container.querySelector(`[data-image="${image.id}"]`);
      if (!card) continue;
      const status = card.querySelector(".job-status");
      if (status && status.textContent !== image.status_display) {
        status.textContent = image.status_display;
        status.className = `job-status status status-${image.status || "none"}`;
        changed = true;
      }
      const error = card.querySelector(".job-error");
      if (error) error.textContent = image.error || "";
    }
    const stalled = document.getElementById("analysis-stalled");
    if (stalled) {
      stalled.textContent = data.stalled || "";
      stalled.hidden = !data.stalled;
    }
    const studyStatus = document.getElementById("study-status");
    if (studyStatus) studyStatus.textContent = data.status;
    if (data.finished) {
      if (changed || container.dataset.wasRunning === "1") window.location.reload();
      return;
    }
    container.dataset.wasRunning = "1";
    setTimeout(poll, delay);
  }
  poll();
})();
