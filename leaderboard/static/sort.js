// Table sorting for the XPrune Bench leaderboard: each header holds a <button> (reachable by Tab,
// pressed by Enter, Space, click or touch) that sorts its column; pressing again reverses.
// Cells carry data-sort (a number, text, or "" for "not measured", which always sorts last).
// Tables with key columns and more (class has-more) start on the key columns; the "Show all N
// columns" button before them adds the rest (without scripts every column shows).
"use strict";
(function () {
  function key(cell) {
    var raw = cell ? cell.getAttribute("data-sort") : "";
    if (raw === null) { raw = cell.textContent.trim(); }
    if (raw === "") { return { empty: true }; }
    var n = Number(raw);
    return isNaN(n) ? { text: raw.toLowerCase() } : { num: n };
  }

  function compare(a, b) {
    if (a.empty || b.empty) { return a.empty && b.empty ? 0 : (a.empty ? 1 : -1); }
    if (a.num !== undefined && b.num !== undefined) { return a.num - b.num; }
    var x = a.num !== undefined ? String(a.num) : a.text, y = b.num !== undefined ? String(b.num) : b.text;
    return x < y ? -1 : (x > y ? 1 : 0);
  }

  function sortBy(table, th) {
    var column = Array.prototype.indexOf.call(th.parentNode.children, th);
    var ascending = th.getAttribute("aria-sort") !== "ascending";
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows).map(function (row, i) {
      return { row: row, key: key(row.cells[column]), index: i };
    });
    rows.sort(function (a, b) {
      var c = compare(a.key, b.key);
      if (c !== 0 && !a.key.empty && !b.key.empty && !ascending) { c = -c; }
      return c !== 0 ? c : a.index - b.index;
    });
    rows.forEach(function (r) { body.appendChild(r.row); });
    Array.prototype.forEach.call(th.parentNode.children, function (h) { h.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("table.sortable").forEach(function (table) {
      table.tHead.querySelectorAll("th").forEach(function (th) {
        var button = th.querySelector("button.sort");
        (button || th).addEventListener("click", function () { sortBy(table, th); });
      });
    });
    document.querySelectorAll("button.columns").forEach(function (button) {
      var table = document.getElementById(button.getAttribute("data-table"));
      if (!table) { return; }
      var label = button.textContent;
      table.classList.add("compact");
      button.hidden = false;
      button.addEventListener("click", function () {
        var all = table.classList.toggle("compact") === false;
        button.setAttribute("aria-pressed", all ? "true" : "false");
        button.textContent = all ? "Key columns only" : label;
      });
    });
  });
}());
