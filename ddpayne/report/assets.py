"""Style sheet and the small script of the report pages (written once into ``<report>/_static``).

The script makes every ``table.sortable`` sortable by clicking a header (numbers by value, using a cell's
``data-v`` when present) and filters the rows of a table by the text typed into the ``input`` whose
``data-filter`` names it: plain words must all appear in the row; ``COLUMN<value``, ``COLUMN>value`` and
``COLUMN=value`` compare a column (e.g. ``SNR>30 CHI2_OUTLIER``).
"""

CSS = """
body { font-family: system-ui, sans-serif; margin: 1.2em 2em; color: #222; }
h1 { font-size: 1.4em; } h2 { font-size: 1.15em; margin-top: 1.4em; }
table { border-collapse: collapse; font-size: 0.85em; margin: 0.5em 0; }
th, td { border: 1px solid #ccc; padding: 2px 6px; text-align: right; white-space: nowrap; }
th { background: #f0f0f0; cursor: pointer; position: sticky; top: 0; }
td.t, th.t { text-align: left; white-space: normal; }
tr.hidden { display: none; }
tr:nth-child(even) td { background: #fafafa; }
.flag { color: #a00; } .ok { color: #080; } .note { color: #555; font-size: 0.9em; }
img.plot { max-width: 100%; }
input.filter { width: 40em; padding: 4px; margin: 0.4em 0; }
nav a { margin-right: 1em; }
"""

JS = r"""
(function () {
  function cellValue(td) {
    var v = td.getAttribute('data-v');
    if (v === null) { v = td.textContent.trim(); }
    var x = parseFloat(v);
    return isNaN(x) ? v.toLowerCase() : x;
  }
  function sortBy(table, col, th) {
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    var asc = th.getAttribute('data-order') !== 'asc';
    rows.sort(function (a, b) {
      var x = cellValue(a.cells[col]), y = cellValue(b.cells[col]);
      var nx = typeof x === 'number', ny = typeof y === 'number';
      if (nx !== ny) { return nx ? -1 : 1; }
      return (x < y ? -1 : x > y ? 1 : 0) * (asc ? 1 : -1);
    });
    rows.forEach(function (r) { body.appendChild(r); });
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (c) { c.removeAttribute('data-order'); });
    th.setAttribute('data-order', asc ? 'asc' : 'desc');
  }
  function filterRows(table, text) {
    var heads = Array.prototype.map.call(table.tHead.rows[0].cells, function (c) {
      return (c.getAttribute('data-col') || c.textContent).trim().toUpperCase();
    });
    var terms = text.trim().split(/\s+/).filter(function (t) { return t.length; });
    Array.prototype.forEach.call(table.tBodies[0].rows, function (r) {
      var show = terms.every(function (t) {
        var m = t.match(/^([A-Za-z0-9_\[\]\/]+)([<>=])(.+)$/);
        if (m) {
          var i = heads.indexOf(m[1].toUpperCase());
          if (i >= 0) {
            var v = cellValue(r.cells[i]), lim = parseFloat(m[3]);
            if (typeof v !== 'number' || isNaN(lim)) { return String(v) === m[3].toLowerCase(); }
            return m[2] === '<' ? v < lim : m[2] === '>' ? v > lim : v === lim;
          }
        }
        return r.textContent.toLowerCase().indexOf(t.toLowerCase()) >= 0;
      });
      r.className = show ? '' : 'hidden';
    });
  }
  document.addEventListener('DOMContentLoaded', function () {
    Array.prototype.forEach.call(document.querySelectorAll('table.sortable'), function (table) {
      Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th, i) {
        th.addEventListener('click', function () { sortBy(table, i, th); });
      });
    });
    Array.prototype.forEach.call(document.querySelectorAll('input[data-filter]'), function (inp) {
      var table = document.getElementById(inp.getAttribute('data-filter'));
      inp.addEventListener('input', function () { filterRows(table, inp.value); });
    });
  });
})();
"""
