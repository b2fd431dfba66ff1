// Live refresh without a framework: re-fetch the page and swap the #live block, unless
// the user is typing in it. Confirmations for admin buttons. A character counter.
(function () {
  "use strict";
  function refresh(live) {
    var seconds = parseFloat(live.dataset.refresh) || 5;
    setTimeout(function tick() {
      if (document.hidden || live.contains(document.activeElement)) {
        return setTimeout(tick, seconds * 1000);
      }
      fetch(location.href, {credentials: "same-origin", headers: {"X-Refresh": "1"}})
        .then(function (r) { return r.ok && !r.redirected ? r.text() : Promise.reject(r); })
        .then(function (html) {
          var fresh = new DOMParser().parseFromString(html, "text/html").getElementById("live");
          if (fresh) { live.innerHTML = fresh.innerHTML; }
          document.body.classList.remove("stale");
          return !fresh || fresh.dataset.refresh;   // a settled page stops refreshing
        })
        .catch(function () { document.body.classList.add("stale"); return true; })
        .then(function (again) { if (again) { setTimeout(tick, seconds * 1000); } });
    }, seconds * 1000);
  }
  function counter(area) {
    var out = document.getElementById(area.dataset.counter);
    function update() {
      var text = area.value, gsm = /^[\x20-\x7e\n\r£¥èéùìòÇØøÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ¤¡ÄÖÑÜ§¿äöñüà€]*$/.test(text);
      var single = gsm ? 160 : 70, multi = gsm ? 153 : 67;
      var parts = text.length <= single ? 1 : Math.ceil(text.length / multi);
      out.textContent = text.length + " characters, " + parts + " part(s), " + (gsm ? "GSM 7-bit" : "UCS-2");
    }
    area.addEventListener("input", update);
    update();
  }
  document.addEventListener("DOMContentLoaded", function () {
    var live = document.getElementById("live");
    if (live && live.dataset.refresh) { refresh(live); }
    document.querySelectorAll("textarea[data-counter]").forEach(counter);
    document.querySelectorAll("form[data-confirm]").forEach(function (form) {
      form.addEventListener("submit", function (e) {
        if (!window.confirm(form.dataset.confirm)) { e.preventDefault(); }
      });
    });
  });
})();
