// The read and arbitration forms (#read-form): shows the recall and the agreement with the AI that follow from each
// breast's BI-RADS, and shows (and requires) the override reason when the decision overrides the AI's call.
// Mirrors cases/reading/rules.py, which the server applies again on submission: keep the two in step.
(function () {
  const form = document.getElementById("read-form");
  if (!form) return;
  const RECALL = new Set([0, 4, 5]);
  const SCREENING = new Set([0, 1, 2, 4, 5]);
  const AGREEMENT = {
    agree: "Agree with the AI",
    override: "Override the AI: give your reason",
  };

  function derive(fieldset) {
    const select = fieldset.querySelector("select[data-birads]");
    const recallOut = fieldset.querySelector(".derived-recall");
    const agreementOut = fieldset.querySelector(".derived-agreement");
    const reasonBox = fieldset.querySelector(".override-reason");
    const reason = reasonBox ? reasonBox.querySelector("textarea") : null;
    const call = fieldset.dataset.aiCall; // positive | negative | no_call | not_shown
    const birads = select && select.value !== "" ? Number(select.value) : null;
    const valid = birads !== null && SCREENING.has(birads);
    const recall = valid ? RECALL.has(birads) : null;
    if (recallOut) {
      recallOut.textContent = valid
        ? recall ? "recall for assessment" : "routine screening (no recall)"
        : "follows from BI-RADS";
    }
    let override = false;
    if (agreementOut) {
      if (valid && (call === "positive" || call === "negative")) {
        const agree = recall === (call === "positive");
        override = !agree;
        agreementOut.textContent = agree ? AGREEMENT.agree : AGREEMENT.override;
      } else {
        agreementOut.textContent = "follows from your BI-RADS and the AI's call";
      }
    }
    if (reasonBox) {
      // Keep a typed reason while the box is hidden: the reader may come back to an override.
      reasonBox.hidden = !override;
      if (reason) reason.required = override;
    }
  }

  for (const fieldset of form.querySelectorAll("fieldset.breast-form")) {
    const select = fieldset.querySelector("select[data-birads]");
    if (!select) continue;
    select.addEventListener("change", () => derive(fieldset));
    derive(fieldset);
  }
})();
