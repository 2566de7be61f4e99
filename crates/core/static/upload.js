// Balance file uploads: shows the form's progress bar while its file is
// sent (the page that answers replaces it). Without scripts the upload
// works the same, without the bar.
(function () {
  "use strict";
  document.querySelectorAll("form.upload").forEach(function (form) {
    form.addEventListener("submit", function () {
      var bar = form.querySelector("progress");
      if (bar) { bar.hidden = false; }
      form.querySelectorAll("button").forEach(function (b) { b.disabled = true; });
    });
  });
})();
