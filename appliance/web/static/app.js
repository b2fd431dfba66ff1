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
  // GSM 03.38: the basic table (ASCII without ` [ \ ] ^ { | } ~, plus these letters) costs
  // one septet, the extension table two; anything else makes the message UCS-2, where an
  // astral character (emoji) is two units. Parts are filled as the server fills them: a
  // character is never split across two (compose.py, gsm/segment.py).
  var BASIC = /^[\n\r !"#$%&'()*+,\-.\/0-9:;<=>?@A-Z_a-z£¥èéùìòÇØøÅåΔΦΓΛΩΠΨΣΘΞÆæßÉ¤¡ÄÖÑÜ§¿äöñüà]$/;
  var EXTENSION = /^[\f\^{}\\\[~\]|€]$/;
  function parts(costs, single, multi) {
    var total = costs.reduce(function (a, b) { return a + b; }, 0);
    if (total <= single) { return 1; }
    var count = 1, used = 0;
    costs.forEach(function (cost) {
      if (used + cost > multi) { count += 1; used = 0; }
      used += cost;
    });
    return count;
  }
  function counter(area) {
    var out = document.getElementById(area.dataset.counter);
    function update() {
      var chars = Array.from(area.value), gsm = chars.every(function (ch) {
        return BASIC.test(ch) || EXTENSION.test(ch);
      });
      var costs = chars.map(function (ch) {
        return gsm ? (EXTENSION.test(ch) ? 2 : 1) : (ch.codePointAt(0) > 0xFFFF ? 2 : 1);
      });
      var count = gsm ? parts(costs, 160, 153) : parts(costs, 70, 67);
      out.textContent = chars.length + " characters, " + count + " part(s), " + (gsm ? "GSM 7-bit" : "UCS-2");
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
