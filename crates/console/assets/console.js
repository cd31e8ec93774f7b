// dingsync console: small enhancements only. Every action works without this file as a
// plain form post; this adds confirmations, plan selection help, live run progress and
// protection against double submits.
(function () {
  "use strict";

  // Ask before destructive actions (forms, or a submit button, with data-confirm).
  document.addEventListener("submit", function (event) {
    var form = event.target;
    var button = event.submitter;
    var question = (button && button.getAttribute("data-confirm")) || form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) {
      event.preventDefault();
      return;
    }
    // One submit per click: disable the buttons after the browser has read the form.
    window.setTimeout(function () {
      form.querySelectorAll("button[type=submit]").forEach(function (b) { b.disabled = true; });
    }, 0);
  });

  // Plan: show how many entries are selected.
  var count = document.querySelector("[data-plan-count]");
  if (count) {
    var update = function () {
      var n = document.querySelectorAll("[data-plan-entry]:checked").length;
      count.textContent = n === 1 ? "1 entry selected" : n + " entries selected";
    };
    document.addEventListener("change", update);
    update();
  }

  // Runs in progress: poll the admin API and move the bar; reload when the run ends.
  document.querySelectorAll("[data-run-progress]").forEach(function (box) {
    var id = box.getAttribute("data-run-progress");
    var bar = box.querySelector("progress");
    var text = box.querySelector("[data-progress-text]");
    var poll = function () {
      fetch("/api/v1/admin/runs/" + encodeURIComponent(id), { credentials: "same-origin" })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (run) {
          if (!run) { return; }
          var s = run.summary;
          if (s.outcome) { window.location.reload(); return; }
          if (s.progress) {
            var p = s.progress;
            if (p.total) { bar.value = Math.min(100, Math.floor(p.done * 100 / p.total)); }
            text.textContent = p.stage + ": " + p.done + (p.total ? " of " + p.total : "");
          }
          window.setTimeout(poll, 2000);
        })
        .catch(function () { window.setTimeout(poll, 5000); });
    };
    window.setTimeout(poll, 2000);
  });
})();
