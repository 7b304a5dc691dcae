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
  // The grid is saved with fetch, not htmx, so that what the person typed survives whatever the
  // server answers: the answer's out-of-band fragments (web/templates/core/report_entry/_saved.html)
  // are put in place here; a busy server (503) is asked again after its Retry-After; an expired
  // session (401) keeps the input in sessionStorage and saves it once the person is back; leaving
  // the page with unsaved input is warned about. Saves run one after another, each posting the
  // form as it is then.
  const STASH_KEY = 'baocao.entry.' + window.location.pathname;
  let timer = null;
  let dirty = false; // typed input not (yet) stored: a warning before leaving
  let generation = 0; // bumped by every input; a save clears `dirty` only if none came meanwhile
  let running = 0; // saves under way
  let chain = Promise.resolve('saved');
  let expiredSession = false;
  let leavingOnPurpose = false;
  const edited = new Set(); // names of the fields typed into since their last save

  function canAutosave(f) { return Boolean(f && f.hasAttribute('data-autosave') && window.fetch); }

  function csrfToken() {
    const meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute('content') : '';
  }

  function status(text, bad) {
    const el = document.getElementById('save-status');
    if (el && text) {
      el.textContent = text;
      el.classList.toggle('save-status-bad', Boolean(bad));
    }
  }

  function sleep(ms) { return new Promise(function (resolve) { window.setTimeout(resolve, ms); }); }

  function retryAfter(response) {
    const value = parseInt(response.headers.get('Retry-After') || '', 10);
    return Math.min(30, Math.max(1, isNaN(value) ? 2 : value));
  }

  // The answer: every element marked hx-swap-oob replaces the one with its id. A field keeps its
  // element (and the caret) and takes the new value.
  function applyAnswer(html) {
    const doc = new DOMParser().parseFromString('<body>' + html + '</body>', 'text/html');
    doc.body.querySelectorAll('[hx-swap-oob]').forEach(function (fresh) {
      const old = fresh.id && document.getElementById(fresh.id);
      if (!old) { return; }
      fresh.removeAttribute('hx-swap-oob');
      if ((old.tagName === 'INPUT' || old.tagName === 'TEXTAREA') && old.tagName === fresh.tagName) {
        old.value = fresh.value;
        return;
      }
      old.replaceWith(document.importNode(fresh, true));
    });
    markErrors();
    markMessages();
  }

  function moveRevision(revision) {
    // The page now shows the report at this revision: the sign forms sign that one.
    document.querySelectorAll('#workflow input[name="revision"]').forEach(function (input) {
      input.value = revision;
    });
  }

  function stash() {
    const f = form();
    const fields = {};
    edited.forEach(function (name) {
      const field = f.elements.namedItem(name);
      const baseName = name.indexOf('cell.') === 0 ? 'base.' + name.slice(5) : 'sbase.' + name.slice(8);
      const base = f.elements.namedItem(baseName);
      if (field) { fields[name] = { value: field.value, base: base ? base.value : null }; }
    });
    try {
      window.sessionStorage.setItem(STASH_KEY, JSON.stringify(fields));
    } catch (e) { /* storage full or off: the input still stays on this page */ }
  }

  function restore() {
    const f = form();
    let fields = null;
    try { fields = JSON.parse(window.sessionStorage.getItem(STASH_KEY) || 'null'); } catch (e) { fields = null; }
    if (!canAutosave(f) || !fields) { return; }
    Object.keys(fields).forEach(function (name) {
      const field = f.elements.namedItem(name);
      if (!field) { return; }
      field.value = fields[name].value;
      const baseName = name.indexOf('cell.') === 0 ? 'base.' + name.slice(5) : 'sbase.' + name.slice(8);
      const base = f.elements.namedItem(baseName);
      // The base the person started from: a cell someone else changed since is shown as a clash.
      if (base && fields[name].base !== null) { base.value = fields[name].base; }
      edited.add(name);
    });
    dirty = true;
    status(f.dataset.msgRestored);
    saveNow();
  }

  function showExpired() {
    const f = form();
    const el = document.getElementById('save-status');
    if (!el) { return; }
    el.textContent = f.dataset.msgExpired + ' ';
    el.classList.add('save-status-bad');
    const link = document.createElement('a');
    link.href = '/login?expired=1&next=' + encodeURIComponent(window.location.pathname);
    link.textContent = f.dataset.msgLogin;
    link.addEventListener('click', function () { leavingOnPurpose = true; });
    el.appendChild(link);
  }

  async function postOnce(leaving) {
    const f = form();
    const body = new URLSearchParams(new FormData(f));
    const init = { method: 'POST', body: body, credentials: 'same-origin',
      headers: { 'HX-Request': 'true', 'X-CSRF-Token': csrfToken() } };
    if (leaving && body.toString().length < 60000) { init.keepalive = true; } // may outlive the page
    return fetch(f.getAttribute('action'), init);
  }

  async function runSave(extra, leaving) {
    const f = form();
    if (!canAutosave(f)) { return 'failed'; }
    for (;;) {
      if (expiredSession) { stash(); showExpired(); return 'expired'; }
      const posted = generation;
      const snapshot = {};
      edited.forEach(function (name) { const field = f.elements.namedItem(name); if (field) { snapshot[name] = field.value; } });
      // A conflict choice (keep / take) travels with this one save only.
      let hidden = null;
      if (extra) {
        hidden = document.createElement('input');
        hidden.type = 'hidden';
        hidden.name = extra.name;
        hidden.value = extra.value;
        f.appendChild(hidden);
      }
      status(f.dataset.msgSaving);
      let response = null;
      try {
        response = await postOnce(leaving);
      } catch (e) {
        response = null;
      } finally {
        if (hidden) { hidden.remove(); }
      }
      if (response === null) { // no answer: the network, or the server is down
        status(f.dataset.msgOffline, true);
        await sleep(5000);
        continue;
      }
      if (response.status === 503) { // busy: the server says when to come back
        const seconds = retryAfter(response);
        status(f.dataset.msgBusy.replace('{seconds}', String(seconds)), true);
        await sleep(seconds * 1000);
        continue;
      }
      if (response.status === 401) { // the session ended: keep everything, save after logging in
        expiredSession = true;
        continue;
      }
      if (!response.ok) {
        status(f.dataset.msgRefused.replace('{status}', String(response.status)), true);
        return 'failed';
      }
      applyAnswer(await response.text());
      const el = document.getElementById('save-status');
      const outcome = (el && el.dataset.outcome) || 'failed';
      if (el && el.dataset.revision) { moveRevision(el.dataset.revision); }
      if (outcome === 'saved' || outcome === 'partial') {
        const errors = document.getElementById('cell-errors');
        Object.keys(snapshot).forEach(function (name) {
          const field = f.elements.namedItem(name);
          const refused = errors && errors.querySelector('p[data-cell="' + name.replace(/^cell\.|^section\./, function (m) { return m === 'section.' ? 'section:' : ''; }) + '"]');
          if (field && field.value === snapshot[name] && !refused) { edited.delete(name); }
        });
        try { window.sessionStorage.removeItem(STASH_KEY); } catch (e) { /* nothing stashed */ }
      }
      if (outcome === 'saved' && generation === posted && edited.size === 0) { dirty = false; }
      return outcome;
    }
  }

  // Save now (Ctrl+S, the Save button, the autosave timer, before signing); resolves to the
  // outcome: saved | partial | conflict | failed | expired.
  function saveNow(extra, leaving) {
    window.clearTimeout(timer);
    const f = form();
    if (!canAutosave(f)) {
      if (f) { f.submit(); }
      return Promise.resolve('failed');
    }
    running += 1;
    const run = function () { return runSave(extra, leaving); };
    chain = chain.then(run, run);
    return chain.finally(function () { running -= 1; });
  }

  document.addEventListener('input', function (event) {
    const f = form();
    if (!canAutosave(f) || !f.contains(event.target) || !event.target.name) { return; }
    dirty = true;
    generation += 1;
    edited.add(event.target.name);
    if (expiredSession) { stash(); return; }
    status(f.dataset.msgUnsaved);
    window.clearTimeout(timer);
    timer = window.setTimeout(function () { saveNow(); }, AUTOSAVE_MS);
  });

  // The live recalculation is an htmx request: on an ended session its 401 carries HX-Redirect,
  // which htmx would follow to the login page, dropping what was typed. The page stays instead
  // and says so, as the save does.
  document.addEventListener('htmx:beforeOnLoad', function (event) {
    const calc = document.getElementById('entry-calc');
    if (event.detail.xhr.status !== 401 || !calc || event.detail.elt !== calc) { return; }
    event.preventDefault();
    expiredSession = true;
    window.clearTimeout(timer);
    stash();
    showExpired();
  });

  // The Save button and the conflict choices: saved in place, the page stays.
  document.addEventListener('submit', function (event) {
    const f = event.target;
    if (f === form() && canAutosave(f)) {
      event.preventDefault();
      const by = event.submitter;
      saveNow(by && by.name && (by.name === 'keep' || by.name === 'take') ? { name: by.name, value: by.value } : null);
      return;
    }
    if (f instanceof HTMLFormElement && canAutosave(form()) && f.closest('#workflow')
        && f.querySelector('input[name="revision"]')) {
      event.preventDefault();
      submitReport(f, event.submitter);
    }
  });

  // Leaving with input not stored yet: one last save on its way, and the browser asks first.
  window.addEventListener('beforeunload', function (event) {
    if (leavingOnPurpose || !canAutosave(form()) || (!dirty && running === 0)) { return; }
    if (!expiredSession && dirty) { saveNow(null, true); }
    event.preventDefault();
    event.returnValue = '';
  });

  // ------------------------------------------------------- signing --
  // "Ký số và gửi" signs the revision the page shows. Input still being typed is saved first
  // (and the forms take the revision that save made); a refusal is shown next to the form, which
  // keeps its file and password. When someone else changed the report meanwhile, the page takes
  // their figures (a save that changes nothing refreshes them) and the person signs again.
  function note(f, text) {
    const box = f.parentNode;
    box.querySelectorAll('.sign-note').forEach(function (el) { el.remove(); });
    if (!text) { return; }
    const p = document.createElement('p');
    p.className = 'flash flash-warn sign-note';
    p.setAttribute('role', 'alert');
    p.textContent = text;
    f.insertAdjacentElement('afterend', p);
  }

  async function submitReport(f, submitter) {
    const grid = form();
    note(f, '');
    document.querySelectorAll('#workflow-refused').forEach(function (el) { el.remove(); });
    if (dirty || running > 0) { await saveNow(); }
    if (dirty) { note(f, grid.dataset.msgSignUnsaved); return; }
    if (f.getAttribute('action').indexOf('/signing/prepare') !== -1) { f.submit(); return; } // a download
    const revision = f.querySelector('input[name="revision"]').value;
    let response = null;
    try {
      response = await fetch(f.getAttribute('action'), { method: 'POST', body: new FormData(f, submitter),
        credentials: 'same-origin' });
    } catch (e) {
      note(f, document.body.dataset.msgNetwork || '');
      return;
    }
    if (response.redirected || response.status === 200) { // done (or the login page): go there
      leavingOnPurpose = true;
      window.location.assign(response.url + (response.url.indexOf('/login') === -1 ? '#workflow' : ''));
      return;
    }
    const doc = new DOMParser().parseFromString(await response.text(), 'text/html');
    const refused = doc.getElementById('workflow-refused');
    if (refused) { f.insertAdjacentElement('afterend', document.importNode(refused, true)); }
    else { note(f, document.body.dataset.msgServer || ''); }
    // Was the report changed by someone else? A save that changes nothing tells, and shows it.
    await saveNow();
    const now = f.querySelector('input[name="revision"]').value;
    const kept = now !== revision ? grid.dataset.msgSignRefreshed : grid.dataset.msgSignKept;
    const p = document.createElement('p');
    p.className = 'help sign-note';
    p.textContent = kept;
    (document.getElementById('workflow-refused') || f).insertAdjacentElement('afterend', p);
  }

  // --------------------------------------------------------- pasting --
  // A block copied from Excel (cells separated by tabs, rows by line breaks) fills the grid from
  // the cell pasted into, to the right and down, position by position as the sheet lays it out;
  // only input cells take a value (a computed or heading cell in the block is skipped). Each cell
  // filled gets an input event, so it is saved exactly like typing (core/numbers.py reads it).
  // A single value is left to the browser's own paste.
  function pastedBlock(text) {
    const rows = text.replace(/\r\n?/g, '\n').split('\n');
    if (rows.length > 1 && rows[rows.length - 1] === '') { rows.pop(); } // Excel ends with a line break
    return rows.map(function (row) { return row.split('\t'); });
  }

  document.addEventListener('paste', function (event) {
    const input = event.target;
    if (!(input instanceof HTMLInputElement) || !input.classList.contains('cell-input')) { return; }
    const data = event.clipboardData || window.clipboardData;
    const text = data ? data.getData('text') : '';
    const block = pastedBlock(text || '');
    if (block.length === 1 && block[0].length === 1) { return; }
    event.preventDefault();
    const td = input.closest('td');
    let tr = input.closest('tr');
    const first = td.cellIndex;
    const filled = [];
    block.forEach(function (values) {
      if (!tr) { return; }
      values.forEach(function (value, offset) {
        const cell = tr.cells[first + offset];
        const target = cell && cell.querySelector('input.cell-input');
        if (target && !target.readOnly && !target.disabled) {
          target.value = value.trim();
          filled.push(target);
        }
      });
      tr = tr.nextElementSibling;
    });
    filled.forEach(function (target) { target.dispatchEvent(new Event('input', { bubbles: true })); });
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

  function start() {
    markErrors();
    restore();
  }
  if (document.readyState === 'loading') {
    document.addEventListener('DOMContentLoaded', start);
  } else {
    start();
  }
})();
