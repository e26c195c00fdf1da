// The admin pages' live previews and the copy button. The pages work without it; the server checks
// everything again when a form is saved.
(function () {
  "use strict";

  // WCAG relative luminance of #rrggbb.
  function luminance(hex) {
    const channel = function (i) {
      const c = parseInt(hex.substr(i, 2), 16) / 255;
      return c <= 0.03928 ? c / 12.92 : Math.pow((c + 0.055) / 1.055, 2.4);
    };
    return 0.2126 * channel(1) + 0.7152 * channel(3) + 0.0722 * channel(5);
  }

  function debounce(fn, ms) {
    let timer = null;
    return function () { clearTimeout(timer); timer = setTimeout(fn, ms); };
  }

  // Operating hours: what the typed calendar means right now, computed by the server's own rules.
  const hoursForm = document.getElementById("hours-form");
  if (hoursForm) {
    const preview = document.getElementById("hours-preview");
    let asked = 0;
    const refresh = debounce(function () {
      const mine = ++asked;
      fetch(hoursForm.dataset.previewUrl, { method: "POST", body: new FormData(hoursForm), credentials: "same-origin" })
        .then(function (r) { return r.json(); })
        .then(function (answer) { if (mine === asked) preview.textContent = answer.text; })
        .catch(function () { /* the saved preview stays */ });
    }, 300);
    hoursForm.addEventListener("input", refresh);
    hoursForm.addEventListener("change", refresh);
  }

  // Automated messages: each text with sample values in its placeholders.
  const messagesForm = document.getElementById("messages-form");
  if (messagesForm) {
    const samples = JSON.parse(messagesForm.dataset.samples || "{}");
    const fill = function (text) {
      return text.replace(/\{(\w+)\}/g, function (all, name) {
        return Object.prototype.hasOwnProperty.call(samples, name) ? samples[name] : all;
      });
    };
    const show = function (box) {
      const target = document.getElementById(box.dataset.preview);
      if (target) target.querySelector(".preview-text").textContent = fill(box.value.trim() || box.placeholder);
    };
    messagesForm.querySelectorAll("textarea[data-preview]").forEach(function (box) {
      show(box);
      box.addEventListener("input", function () { show(box); });
    });
  }

  // Appearance: the WCAG contrast of the text on the accent, and a small preview of the panel.
  const lookForm = document.getElementById("appearance-form");
  if (lookForm) {
    const minimum = parseFloat(lookForm.dataset.minimum);
    const accent = document.getElementById("f-accent");
    const readout = document.getElementById("contrast-accent");
    const ratio = function (a, b) {
      const [hi, lo] = [luminance(a), luminance(b)].sort(function (x, y) { return y - x; });
      return (hi + 0.05) / (lo + 0.05);
    };
    const paint = function () {
      const value = accent.value.trim().toLowerCase();
      const header = document.getElementById("mock-header");
      const own = document.getElementById("mock-own");
      if (!/^#[0-9a-f]{6}$/.test(value)) { readout.textContent = "Write the colour as #rrggbb."; return; }
      const light = ratio(value, "#ffffff");
      const dark = ratio(value, "#111111");
      const best = light >= dark ? { name: "White", colour: "#ffffff", ratio: light }
        : { name: "Dark", colour: "#111111", ratio: dark };
      readout.textContent = best.ratio >= minimum
        ? best.name + " text, contrast " + best.ratio.toFixed(2) + ":1"
        : "Refused when saved: the best text on it reaches " + best.ratio.toFixed(2) + ":1, under " + minimum + ":1";
      [header, own].forEach(function (node) {
        node.style.setProperty("background", value);
        node.style.setProperty("color", best.colour);
      });
    };
    const text = function (field, target, fallback) {
      const input = document.getElementById("f-" + field);
      const node = document.getElementById(target);
      const update = function () { node.textContent = input.value.trim() || fallback; };
      input.addEventListener("input", update);
    };
    accent.addEventListener("input", paint);
    paint();
    text("title_en", "mock-header", document.getElementById("mock-header").textContent);
    text("greeting_en", "mock-greeting", "");
    text("reply_time_en", "mock-reply", "");
  }

  // Labels: each in its colour, with dark or light text as the console draws it (through the CSSOM:
  // the CSP allows no style attributes).
  document.querySelectorAll(".label-chip[data-colour]").forEach(function (chip) {
    const colour = chip.dataset.colour;
    if (!/^#[0-9a-f]{6}$/i.test(colour)) return;
    const light = luminance(colour) > 0.18;
    chip.classList.toggle("label-on-light", light);
    chip.classList.toggle("label-on-dark", !light);
    chip.style.setProperty("--label-colour", colour);
  });

  // Embed: copy the snippet.
  document.querySelectorAll("button[data-copy]").forEach(function (button) {
    button.addEventListener("click", function () {
      const source = document.getElementById(button.dataset.copy);
      const status = document.getElementById("copy-status");
      const done = function () { status.textContent = "Copied to the clipboard."; };
      if (navigator.clipboard && navigator.clipboard.writeText) {
        navigator.clipboard.writeText(source.value).then(done, function () {
          source.select();
          status.textContent = "Selected: press Ctrl+C (or ⌘C) to copy.";
        });
      } else {
        source.select();
        status.textContent = "Selected: press Ctrl+C (or ⌘C) to copy.";
      }
    });
  });
})();
