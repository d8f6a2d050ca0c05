// The browsable API (templates/rest_framework/api.html): "Log out" posts the logout form. DRF
// does this with an inline onclick, which the Content-Security-Policy does not run.
(function () {
  "use strict";
  const form = document.getElementById("logoutForm");
  const link = document.querySelector(".logout-link");
  if (!form || !link) { return; }
  link.addEventListener("click", function (event) {
    event.preventDefault();
    form.submit();
  });
})();
