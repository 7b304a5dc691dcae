/*
 * baocao: the report entry grid (web/templates/core/report_entry/).
 *
 * The server does the work (recalculation, checks, saving, conflicts); this file only moves
 * the caret between cells, saves a moment after typing stops (and on Ctrl+S), marks the cells
 * the server found wrong (the hidden #cell-errors list it sends), and focuses a cell from the
 * validation panel. Without it the page still works as a plain form. Plain ES2017, no eval.
 */
(function () {
  'use strict';

  const AUTOSAVE_MS = 2000;

  function form() { return document.getElementById('entry-form'); }
  function grid() { return document.getElementById('entry-grid'); }

  // ------------------------------------------------------------ moving --
  function inputsInRow(tr) {
    return Array.prototype.slice.call(tr.querySelectorAll('input.cell-input'));
  }

  function vertical(input, step) {
    let tr = input.closest('tr');
    const col = input.dataset.col;
    while (tr) {
      tr = step > 0 ? tr.nextElementSibling : tr.previousElementSibling;
      if (!tr) { return null; }
      const next = tr.querySelector('input.cell-input[data-col="' + col + '"]');
      if (next) { return next; }
    }
    return null;
  }

  function horizontal(input, step) {
    const all = Array.prototype.slice.call(grid().querySelectorAll('input.cell-input'));
    const i = all.indexOf(input);
    return all[i + step] || null;
  }

  function go(target) {
    if (!target) { return false; }
    target.focus();
    target.select();
    return true;
  }

  document.addEventListener('keydown', function (event) {
    const input = event.target;
    if ((event.ctrlKey || event.metaKey) && (event.key === 's' || event.key === 'S') && form()) {
      event.preventDefault();
      saveNow();
      return;
    }
    if (!(input instanceof HTMLInputElement) || !input.classList.contains('cell-input')) { return; }
    if (event.altKey && (event.key === 'm' || event.key === 'M')) {
      const note = input.closest('td').querySelector('.cell-note');
      if (note) { event.preventDefault(); note.click(); }
      return;
    }
    if (event.altKey || event.ctrlKey || event.metaKey) { return; }
    const atStart = input.selectionStart === 0 && input.selectionEnd === 0;
    const atEnd = input.selectionStart === input.value.length && input.selectionEnd === input.value.length;
    let moved = false;
    if (event.key === 'Enter' || event.key === 'ArrowDown') {
      moved = go(vertical(input, 1));
      if (event.key === 'Enter') { event.preventDefault(); } // never submit the whole form
    } else if (event.key === 'ArrowUp') {
      moved = go(vertical(input, -1));
    } else if (event.key === 'ArrowLeft' && atStart) {
      moved = go(horizontal(input, -1));
    } else if (event.key === 'ArrowRight' && atEnd) {
      moved = go(horizontal(input, 1));
    }
    if (moved) { event.preventDefault(); }
  });

  // ------------------------------------------------------------ saving --
  let timer = null;

  function status(text) {
    const el = document.getElementById('save-status');
    if (el && text) {
      el.textContent = text;
      el.classList.remove('save-status-bad');
    }
  }

  function saveNow() {
    const f = form();
    window.clearTimeout(timer);
    if (!f || !window.htmx || !f.hasAttribute('hx-post')) {
      if (f) { f.submit(); }
      return;
    }
    status(f.dataset.msgSaving);
    window.htmx.trigger(f, 'entry-save');
  }

  document.addEventListener('input', function (event) {
    const f = form();
    if (!f || !f.hasAttribute('hx-post') || !f.contains(event.target)) { return; }
    status(f.dataset.msgUnsaved);
    window.clearTimeout(timer);
    timer = window.setTimeout(saveNow, AUTOSAVE_MS);
  });

  // A Save button press goes through htmx (hx-trigger "submit"); cancel a pending autosave.
  document.addEventListener('submit', function (event) {
    if (event.target === form()) { window.clearTimeout(timer); }
  });

  // ----------------------------------------------------- cell messages --
  function markErrors() {
    const g = grid();
    const list = document.getElementById('cell-errors');
    if (!g || !list) { return; }
    const root = form() || document;
    root.querySelectorAll('.cell-error').forEach(function (el) { el.remove(); });
    root.querySelectorAll('[aria-invalid="true"]').forEach(function (el) {
      el.removeAttribute('aria-invalid');
      el.removeAttribute('aria-describedby');
    });
    root.querySelectorAll('td.has-error').forEach(function (td) { td.classList.remove('has-error'); });
    list.querySelectorAll('p[data-cell]').forEach(function (p) {
      const where = p.dataset.cell;
      let holder;
      let field;
      if (where.indexOf('section:') === 0) {
        holder = root.querySelector('[data-section="' + where.slice(8) + '"]');
        field = holder && holder.querySelector('textarea');
      } else {
        holder = g.querySelector('td[data-cell="' + where + '"]');
        field = holder && holder.querySelector('input.cell-input');
      }
      if (!holder) { return; }
      const id = 'e-' + where.replace(/[.:]/g, '-');
      const span = document.createElement('span');
      span.className = 'cell-error';
      span.id = id;
      span.textContent = p.textContent; // never parsed as HTML
      holder.appendChild(span);
      holder.classList.add('has-error');
      if (field) {
        field.setAttribute('aria-invalid', 'true');
        field.setAttribute('aria-describedby', id);
      }
    });
  }

  // The validation panel's links name their cell and severity: the worst one outlines the cell.
  const RANK = { blocker: 4, error: 3, warning: 2, info: 1 };
  function markMessages() {
    const g = grid();
    const panel = document.getElementById('entry-messages');
    if (!g || !panel) { return; }
    g.querySelectorAll('td[class*="msg-"]').forEach(function (td) {
      td.classList.remove('msg-blocker', 'msg-error', 'msg-warning', 'msg-info');
    });
    const worst = {};
    panel.querySelectorAll('[data-focus-cell][data-severity]').forEach(function (a) {
      const cell = a.dataset.focusCell;
      if (!worst[cell] || RANK[a.dataset.severity] > RANK[worst[cell]]) { worst[cell] = a.dataset.severity; }
    });
    Object.keys(worst).forEach(function (cell) {
      const td = g.querySelector('td[data-cell="' + cell + '"]');
      if (td) { td.classList.add('msg-' + worst[cell]); }
    });
  }

  document.addEventListener('htmx:afterSettle', function () { markErrors(); markMessages(); });
  document.addEventListener('htmx:oobAfterSwap', function (event) {
    if (event.detail && event.detail.target && event.detail.target.id === 'cell-errors') { markErrors(); }
  });

  // -------------------------------------------- panel links and comments --
  document.addEventListener('click', function (event) {
    const link = event.target instanceof Element && event.target.closest('[data-focus-cell]');
    if (link) {
      const td = grid() && grid().querySelector('td[data-cell="' + link.dataset.focusCell + '"]');
      if (td) {
        event.preventDefault();
        const input = td.querySelector('input.cell-input');
        td.scrollIntoView({ block: 'center', inline: 'center' });
        if (input) { input.focus(); input.select(); } else { td.setAttribute('tabindex', '-1'); td.focus(); }
      }
      return;
    }
    // A cell's comment link opens the panel in place (one handler, not one htmx attribute per cell).
    const note = event.target instanceof Element && event.target.closest('#entry-grid a.cell-note');
    if (note && window.htmx) {
      event.preventDefault();
      window.htmx.ajax('GET', note.getAttribute('href'), { target: '#comment-panel', swap: 'innerHTML' });
      return;
    }
    const close = event.target instanceof Element && event.target.closest('[data-close-comments]');
    if (close) {
      const panel = document.getElementById('comment-panel');
      if (panel) {
        event.preventDefault();
        panel.innerHTML = '';
      }
    }
  });

  if (document.readyState === 'loading') {
    document.addEventListener('DOMContentLoaded', markErrors);
  } else {
    markErrors();
  }
})();
