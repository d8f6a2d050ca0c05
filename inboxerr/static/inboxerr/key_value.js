// Key/value fields in the admin (inboxerr/admin_fields.py): "Add a row" clones the last row of the
// table it sits under, emptied and without the label's id.
(function () {
  "use strict";
  document.addEventListener("click", function (event) {
    const link = event.target.closest(".key-value-add");
    if (!link) { return; }
    event.preventDefault();
    const table = link.previousElementSibling;
    const row = table.rows[table.rows.length - 1].cloneNode(true);
    row.querySelectorAll("input").forEach(function (input) {
      input.value = "";
      input.removeAttribute("id");
    });
    table.tBodies[0].appendChild(row);
  });
})();
