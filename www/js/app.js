// evserver demo site: theme toggle, this server's address, clock, copy buttons, image
// facts, HTTP probes.
// Every part checks for its elements first, so one file serves every page. Nothing is
// fetched on load except the gallery's HEAD requests; probes run only when clicked.
(function () {
  "use strict";

  var root = document.documentElement;
  var KEY = "evserver-theme";

  // Theme: follow the OS until the visitor picks one, then remember the choice.
  function storedTheme() {
    try {
      return window.localStorage.getItem(KEY);
    } catch (e) {
      return null; // storage may be disabled
    }
  }

  function systemDark() {
    return window.matchMedia && window.matchMedia("(prefers-color-scheme: dark)").matches;
  }

  function applyTheme(theme) {
    root.classList.toggle("dark", theme === "dark");
    root.classList.toggle("light", theme === "light");
    var dark = theme === "dark" || (theme !== "light" && systemDark());
    var button = document.getElementById("theme-toggle");
    if (button) {
      button.hidden = false;
      button.setAttribute("aria-pressed", dark ? "true" : "false");
      button.textContent = dark ? "Light mode" : "Dark mode";
    }
    return dark;
  }

  var isDark = applyTheme(storedTheme());
  var toggle = document.getElementById("theme-toggle");
  if (toggle) {
    toggle.addEventListener("click", function () {
      var theme = isDark ? "light" : "dark";
      isDark = applyTheme(theme);
      try {
        window.localStorage.setItem(KEY, theme);
      } catch (e) {
        /* the choice lasts for this page only */
      }
    });
  }

  // This server's own address where a page names it (a link, the URLs of the curl
  // commands): the port it really runs on, not the default the HTML says without script.
  if (/^https?:$/.test(window.location.protocol)) {
    Array.prototype.forEach.call(document.querySelectorAll("[data-origin]"), function (el) {
      el.textContent = window.location.origin + el.getAttribute("data-origin");
    });
  }

  // Clock on the home page: proof that the page's script arrived and runs.
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

  // Copy buttons for command lines; only where the Clipboard API exists (secure contexts,
  // localhost among them), so no button that cannot work is ever shown.
  if (navigator.clipboard) {
    Array.prototype.forEach.call(document.querySelectorAll(".copyable"), function (box) {
      var code = box.querySelector("code");
      if (!code) return;
      var button = document.createElement("button");
      button.type = "button";
      button.className = "copy-button";
      button.textContent = "Copy";
      button.setAttribute("aria-label", "Copy the command");
      button.addEventListener("click", function () {
        navigator.clipboard.writeText(code.textContent).then(function () {
          button.textContent = "Copied";
          window.setTimeout(function () { button.textContent = "Copy"; }, 1500);
        }, function () {
          button.textContent = "Select it";
        });
      });
      box.appendChild(button);
    });
  }

  // Gallery: which file a <picture> picked, and each image's size from a HEAD request.
  function fileName(url) {
    return url ? url.slice(url.lastIndexOf("/") + 1) : "";
  }

  var chosen = document.getElementById("chosen-format");
  var showcase = document.getElementById("showcase-img");
  if (chosen && showcase) {
    var report = function () { chosen.textContent = fileName(showcase.currentSrc); };
    if (showcase.complete) report(); else showcase.addEventListener("load", report);
  }

  Array.prototype.forEach.call(document.querySelectorAll("[data-size-of]"), function (out) {
    fetch(out.getAttribute("data-size-of"), { method: "HEAD" }).then(function (response) {
      var length = response.headers.get("Content-Length");
      if (response.ok && length) {
        out.textContent = (Number(length) / 1024).toFixed(1) + " KiB";
      }
    }, function () { /* leave the placeholder */ });
  });

  // Tools: each probe sends one request and shows what came back.
  function show(out, ok, lines) {
    out.textContent = lines.join("\n");
    out.className = ok ? "ok" : "bad";
  }

  function describe(response, names) {
    var lines = [response.status + " " + response.statusText];
    names.forEach(function (name) {
      var value = response.headers.get(name);
      if (value !== null) lines.push(name + ": " + value);
    });
    return lines;
  }

  var probes = {
    // A byte range, as a video player or a resumed download asks for it.
    range: function () {
      return fetch("/media/clip.mp4", { headers: { Range: "bytes=0-99" }, cache: "no-store" })
        .then(function (r) {
          return r.arrayBuffer().then(function (body) {
            var lines = describe(r, ["Content-Range", "Content-Length", "Accept-Ranges"]);
            lines.push("(" + body.byteLength + " bytes of body)");
            return [r.status === 206, lines];
          });
        });
    },
    // Revalidation: the ETag from a first response, sent back in If-None-Match.
    conditional: function () {
      return fetch("/css/style.css", { cache: "no-store" }).then(function (first) {
        var etag = first.headers.get("ETag");
        if (!etag) return [false, ["no ETag in " + first.status + " response"]];
        return fetch("/css/style.css", { headers: { "If-None-Match": etag }, cache: "no-store" })
          .then(function (r) {
            var lines = ["If-None-Match: " + etag].concat(describe(r, ["ETag", "Cache-Control"]));
            return [r.status === 304, lines];
          });
      });
    },
    // Precompressed: the browser accepts gzip, so style.css.gz is what travels.
    gzip: function () {
      return fetch("/css/style.css", { cache: "no-store" }).then(function (r) {
        return [r.headers.get("Content-Encoding") === "gzip",
                describe(r, ["Content-Encoding", "Content-Type", "Vary", "ETag"])];
      });
    },
    // The status page, if this server was started with --status-path /_status.
    status: function () {
      return fetch("/_status", { cache: "no-store", headers: { Accept: "application/json" } }).then(function (r) {
        if (!r.ok) {
          return [false, describe(r, []).concat(
            ["Not enabled: start evserver with --status-path /_status"])];
        }
        return r.text().then(function (text) {
          var body = text;
          try { body = JSON.stringify(JSON.parse(text), null, 2); } catch (e) { /* as is */ }
          return [true, describe(r, ["Content-Type"]).concat([body])];
        });
      });
    },
    // A missing file: 404, with the site's own 404.html as the body.
    missing: function () {
      return fetch("/no/such/file", { cache: "no-store" }).then(function (r) {
        return [r.status === 404, describe(r, ["Content-Type", "Content-Length"])];
      });
    }
  };

  Array.prototype.forEach.call(document.querySelectorAll("[data-probe]"), function (button) {
    var out = document.getElementById(button.getAttribute("aria-controls"));
    var probe = probes[button.getAttribute("data-probe")];
    if (!out || !probe) return;
    button.addEventListener("click", function () {
      out.textContent = "...";
      out.className = "";
      probe().then(function (result) {
        show(out, result[0], result[1]);
      }, function (error) {
        show(out, false, ["request failed: " + error]);
      });
    });
  });
})();
