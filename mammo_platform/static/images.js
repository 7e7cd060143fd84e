// Shared by the pages that show images: readers' marks placed from their data attributes (in percent of the image;
// no inline styles, which the Content-Security-Policy refuses), and heatmap opacity sliders
// (input.opacity[data-overlay] -> the overlay image with that id).
(function () {
  document.querySelectorAll(".mark[data-left][data-top]").forEach((mark) => {
    mark.style.left = `${mark.dataset.left}%`;
    mark.style.top = `${mark.dataset.top}%`;
  });
  document.querySelectorAll("input.opacity[data-overlay]").forEach((slider) => {
    const overlay = document.getElementById(slider.dataset.overlay);
    if (!overlay) return;
    const apply = () => { overlay.style.opacity = String(slider.value / 100); };
    slider.addEventListener("input", apply);
    apply();
  });
})();
