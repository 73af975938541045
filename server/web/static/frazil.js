// frazil website: live updates without inline script (the CSP forbids it).
// Pages work without JavaScript; this only refreshes numbers and log tails.
"use strict";

function liveCells(root) {
  return root.querySelectorAll("[data-live-group]");
}

function formatAction(action) {
  if (!action) return "";
  var text = action.action + ": " + action.status + " " + action.progress + "%";
  return action.error ? text + " (" + action.error + ")" : text;
}

function applyStatus(root, data) {
  liveCells(root).forEach(function (cell) {
    var group = cell.getAttribute("data-live-group");
    var status = cell.getAttribute("data-live-status");
    var name = cell.getAttribute("data-live-name");
    var value;
    if (group === "action") value = formatAction(data.action);
    else if (group === "dataset_status" || group === "truncated") value = String(data[group]);
    else if (name !== null) value = ((data[group] || {})[name] || {})[status] || 0;
    else value = (data[group] || {})[status] || 0;
    var digits = cell.getAttribute("data-live-digits");
    if (digits !== null) {
      if (status === "efficiency") value = value * 100;
      value = String(Number(Number(value).toFixed(parseInt(digits, 10))));  // as the server's "num" filter
    }
    if (cell.textContent !== String(value)) cell.textContent = String(value);
  });
}

function pollStatus(root) {
  var url = root.getAttribute("data-poll-url");
  var seconds = parseFloat(root.getAttribute("data-poll-seconds") || "2");
  function tick() {
    fetch(url, {credentials: "same-origin", headers: {"Accept": "application/json"}})
      .then(function (reply) { return reply.ok ? reply.json() : null; })
      .then(function (data) { if (data) applyStatus(root, data); })
      .catch(function () {})
      .finally(function () { setTimeout(tick, seconds * 1000); });
  }
  setTimeout(tick, seconds * 1000);
}

function tailLog(pre) {
  var url = pre.getAttribute("data-tail-url");
  var offset = parseInt(pre.getAttribute("data-offset") || "0", 10);
  var state = document.getElementById("log-state");
  var size = document.getElementById("log-size");
  function tick() {
    fetch(url + "?offset=" + offset, {credentials: "same-origin"})
      .then(function (reply) { return reply.ok ? reply.json() : null; })
      .then(function (data) {
        if (!data) { setTimeout(tick, 3000); return; }
        if (data.data) {
          var atBottom = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 20;
          pre.appendChild(document.createTextNode(data.data));  // text, never HTML
          if (atBottom) pre.scrollTop = pre.scrollHeight;
        }
        offset = data.offset;
        if (size) size.textContent = String(data.size);
        // The server re-reads the whole log for each poll, so big logs are polled less often.
        if (data.running) setTimeout(tick, Math.min(10000, 1000 + data.size / 1000));
        else if (state) state.textContent = "finished";
      })
      .catch(function () { setTimeout(tick, 3000); });
  }
  setTimeout(tick, 1000);
}

function lintJson(area) {
  var out = document.getElementById(area.getAttribute("data-json-lint"));
  function check() {
    try { JSON.parse(area.value); out.textContent = "JSON syntax OK (the server checks the rest when you submit)"; out.className = "hint"; }
    catch (e) { out.textContent = "JSON syntax: " + e.message; out.className = "field-error"; }
  }
  area.addEventListener("input", check);
  check();
}

function jumpToLine(link) {
  // Select the line of the config a problem points at (lines as the server re-formatted them).
  link.addEventListener("click", function (event) {
    var area = document.getElementById("config");
    if (!area) return;
    event.preventDefault();
    var line = parseInt(link.getAttribute("data-line"), 10);
    var lines = area.value.split("\n");
    var start = 0;
    for (var i = 0; i < line - 1 && i < lines.length; i++) start += lines[i].length + 1;
    var end = start + (lines[line - 1] || "").length;
    area.focus();
    area.setSelectionRange(start, end);
    area.scrollTop = Math.max(0, (line - 5) * (area.scrollHeight / Math.max(lines.length, 1)));
  });
}

document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll(".problem-line").forEach(jumpToLine);
  document.querySelectorAll("[data-poll-url]").forEach(pollStatus);
  document.querySelectorAll("[data-tail-url]").forEach(tailLog);
  document.querySelectorAll("[data-json-lint]").forEach(lintJson);
});
