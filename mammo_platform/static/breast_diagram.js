// The breast diagram as an input (templates/screening/_breast_diagram.html): a click fills the symptom form's side,
// area, clock position and distance from the nipple, and shows where. The form works without it (its fields are
// ordinary controls); the server checks everything again. No inline code: loaded as a file under the CSP.
(function () {
  "use strict";
  var CM_PER_RADIUS = 10; // the drawn radius stands for about 10 cm from the nipple

  function setValue(form, name, value) {
    var field = form.elements[name];
    if (!field) return;
    if (typeof RadioNodeList !== "undefined" && field instanceof RadioNodeList) {
      for (var i = 0; i < field.length; i++) field[i].checked = field[i].value === String(value);
    } else {
      field.value = String(value);
    }
    field.dispatchEvent && field.dispatchEvent(new Event("change", { bubbles: true }));
  }

  function position(svg, event) {
    var point = svg.createSVGPoint();
    point.x = event.clientX;
    point.y = event.clientY;
    return point.matrixTransform(svg.getScreenCTM().inverse());
  }

  document.querySelectorAll("svg[data-diagram-input]").forEach(function (svg) {
    var form = document.getElementById(svg.getAttribute("data-diagram-input"));
    if (!form) return;
    var prefix = form.getAttribute("data-prefix") || "";
    var radius = parseFloat(svg.getAttribute("data-radius"));
    var centres = {
      R: [parseFloat(svg.getAttribute("data-right-x")), parseFloat(svg.getAttribute("data-right-y"))],
      L: [parseFloat(svg.getAttribute("data-left-x")), parseFloat(svg.getAttribute("data-left-y"))],
    };
    var pending = svg.querySelector("[data-pending-marker]");
    svg.addEventListener("click", function (event) {
      var p = position(svg, event);
      var side = Math.abs(p.x - centres.R[0]) <= Math.abs(p.x - centres.L[0]) ? "R" : "L";
      var dx = p.x - centres[side][0];
      var dy = p.y - centres[side][1];
      var depth = Math.sqrt(dx * dx + dy * dy) / radius;
      var hour = Math.round(((Math.atan2(dx, -dy) * 180) / Math.PI + 360) % 360 / 30) % 12 || 12;
      var outer = side === "R" ? dx < 0 : dx > 0;
      setValue(form, prefix + "laterality", side);
      if (depth < 0.15) {
        setValue(form, prefix + "area", "central");
        setValue(form, prefix + "clock_hour", "");
        setValue(form, prefix + "distance_cm", "");
      } else if (depth > 1.05 && dy < 0 && outer) {
        setValue(form, prefix + "area", "axilla");
        setValue(form, prefix + "clock_hour", "");
        setValue(form, prefix + "distance_cm", "");
      } else {
        setValue(form, prefix + "area", "clock");
        setValue(form, prefix + "clock_hour", hour);
        setValue(form, prefix + "distance_cm", (Math.round(Math.min(depth, 1) * CM_PER_RADIUS * 2) / 2).toFixed(1));
      }
      if (pending) {
        pending.setAttribute("cx", p.x.toFixed(1));
        pending.setAttribute("cy", p.y.toFixed(1));
      }
    });
  });
})();
