// The demo site's token function: its own backend signs a token for the signed-in customer.
window.getChatToken = function (callback) {
  var who = document.body.getAttribute("data-customer");
  fetch("/demo/token?customer=" + encodeURIComponent(who), { credentials: "same-origin" })
    .then(function (r) { return r.json(); })
    .then(function (j) { callback(j.token); });
};
