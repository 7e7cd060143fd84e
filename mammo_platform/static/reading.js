// Reading and arbitration pages (with images.js for opacity sliders and the marks of submitted reads).
// The suspicious-location mark: a click on an image of a breast sets that breast's mark in ORIGINAL image
//    pixel coordinates. The preview is the original scaled uniformly, so the fraction of the displayed width and
//    height times the original's columns and rows gives the original pixel. One mark per breast; it can be cleared.
(function () {
  const form = document.getElementById("read-form");
  if (!form) return;

  function fields(side) {
    return {
      image: form.querySelector(`input[name="${side}-mark_image"]`),
      row: form.querySelector(`input[name="${side}-mark_row"]`),
      column: form.querySelector(`input[name="${side}-mark_column"]`),
      status: form.querySelector(`.mark-status[data-side="${side}"]`),
    };
  }

  function sides() {
    return Array.from(form.querySelectorAll("fieldset.breast-form")).map((f) => f.dataset.side);
  }

  function draw() {
    document.querySelectorAll(".viewer .mark.draft").forEach((mark) => mark.remove());
    for (const side of sides()) {
      const f = fields(side);
      if (!f.image) continue;
      const viewer = f.image.value && document.querySelector(`.viewer[data-image="${f.image.value}"]`);
      if (!viewer || f.row.value === "" || f.column.value === "") {
        if (f.status) f.status.textContent = "No mark. Click on an image of this breast to place one.";
        continue;
      }
      const row = Number(f.row.value);
      const column = Number(f.column.value);
      const mark = document.createElement("span");
      mark.className = "mark draft";
      mark.textContent = "+";
      mark.style.left = `${(100 * column) / Number(viewer.dataset.columns)}%`;
      mark.style.top = `${(100 * row) / Number(viewer.dataset.rows)}%`;
      mark.title = "Your mark";
      viewer.appendChild(mark);
      if (f.status) {
        f.status.textContent = `${viewer.dataset.label}, row ${Math.round(row)}, column ${Math.round(column)}.`;
      }
    }
  }

  document.querySelectorAll(".viewer.markable").forEach((viewer) => {
    const image = viewer.querySelector("img.base");
    if (!image) return;
    image.addEventListener("click", (event) => {
      const f = fields(viewer.dataset.laterality);
      if (!f.image) return;
      const box = image.getBoundingClientRect();
      const x = (event.clientX - box.left) / box.width;
      const y = (event.clientY - box.top) / box.height;
      if (!(x >= 0 && x < 1 && y >= 0 && y < 1)) return;
      f.image.value = viewer.dataset.image;
      // Rounded down to a tenth of a pixel: rounding up could land on the edge, outside the image.
      f.column.value = String(Math.floor(x * Number(viewer.dataset.columns) * 10) / 10);
      f.row.value = String(Math.floor(y * Number(viewer.dataset.rows) * 10) / 10);
      draw();
    });
  });

  form.querySelectorAll("button.clear-mark").forEach((button) => {
    button.addEventListener("click", () => {
      const f = fields(button.dataset.side);
      for (const input of [f.image, f.row, f.column]) if (input) input.value = "";
      draw();
    });
  });

  draw();
})();
