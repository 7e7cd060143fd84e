(function () {
  const slider = document.getElementById("opacity");
  const overlay = document.getElementById("overlay");
  if (!slider || !overlay) return;
  slider.addEventListener("input", () => { overlay.style.opacity = String(slider.value / 100); });
})();
