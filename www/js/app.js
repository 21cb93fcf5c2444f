// evserver demo site: a live clock and a dark-mode toggle.
// No network requests; the theme choice is kept in localStorage.
(function () {
  "use strict";

  var root = document.documentElement;
  var KEY = "evserver-theme";

  function storedTheme() {
    try {
      return window.localStorage.getItem(KEY);
    } catch (e) {
      return null; // storage may be disabled
    }
  }

  function applyTheme(dark) {
    root.classList.toggle("dark", dark);
    var button = document.getElementById("theme-toggle");
    if (button) {
      button.setAttribute("aria-pressed", dark ? "true" : "false");
      button.textContent = dark ? "Light mode" : "Dark mode";
    }
  }

  applyTheme(storedTheme() === "dark");

  var toggle = document.getElementById("theme-toggle");
  if (toggle) {
    toggle.addEventListener("click", function () {
      var dark = !root.classList.contains("dark");
      applyTheme(dark);
      try {
        window.localStorage.setItem(KEY, dark ? "dark" : "light");
      } catch (e) {
        /* ignore */
      }
    });
  }

  var clock = document.getElementById("clock");
  if (clock) {
    var tick = function () {
      var now = new Date();
      clock.textContent = now.toLocaleTimeString();
      clock.setAttribute("datetime", now.toISOString());
    };
    tick();
    window.setInterval(tick, 1000);
  }
})();
