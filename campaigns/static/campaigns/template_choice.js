// The campaign wizard's message step (templates/admin/campaigns/wizard/content.html).
// Show the chosen template's content under the choice, hide the others.
(function () {
  const select = document.getElementById("id_template");
  if (!select) return;
  select.addEventListener("change", function () {
    document.querySelectorAll(".template-content").forEach(function (section) {
      section.hidden = section.dataset.template !== select.value;
    });
  });
})();
