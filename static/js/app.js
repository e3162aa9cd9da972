// Engine Room's own page behaviour, kept small: htmx does the heavy lifting.
(function () {
  "use strict";

  // After a "Skip to content" jump, move keyboard focus into <main> as well as the scroll
  // position, so the next Tab starts there (some browsers only scroll).
  document.addEventListener("click", function (event) {
    const link = event.target.closest(".skip-link");
    if (!link) return;
    const target = document.querySelector(link.getAttribute("href"));
    if (target) target.focus();
  });
})();
