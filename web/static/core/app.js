/*
 * baocao: page behaviour and htmx configuration.
 *
 * The Content-Security-Policy forbids inline scripts and eval, so this file
 * holds all page behaviour. There is no build step and no dependency other
 * than the vendored htmx. Plain ES2017.
 *
 * Load order (in the base template, both in <head> with `defer`, NOT `async`):
 *   <script src=".../core/vendor/htmx-2.0.X.min.js" defer></script>
 *   <script src=".../core/app.js" defer></script>
 * htmx reads some config only when DOMContentLoaded fires, so this file must
 * run after htmx has loaded and before that event.
 */
(function () {
  'use strict';

  // ---------------------------------------------------------------- htmx --
  // Confirmation and auto-submit (below) must keep working if htmx fails to
  // load, so htmx is optional here.
  const htmx = window.htmx;

  if (htmx) {
    const config = htmx.config;

    // Never evaluate code from attributes (hx-on, hx-vals "js:", trigger
    // filters), and never run <script> tags found in swapped HTML. The CSP
    // blocks both anyway; this stops htmx from trying.
    config.allowEval = false;
    config.allowScriptTags = false;

    // Only send requests to our own origin (this is the default; set it
    // explicitly so it stays on).
    config.selfRequestsOnly = true;

    // Pages contain personal data. Do not copy page snapshots into
    // sessionStorage (a size of 0 also removes any existing cache).
    config.historyCacheSize = 0;
    // With no cache, the Back button would otherwise re-fetch the page as an
    // htmx request and swap the answer into <body>. The server may answer
    // htmx requests with a fragment, so do a full reload instead.
    config.refreshOnHistoryMiss = true;

    // htmx normally injects an inline <style> for .htmx-indicator. The CSP
    // blocks that, so the rules live in app.css instead.
    config.includeIndicatorStyles = false;

    // How each HTTP status is handled. The first match wins. `code` is a
    // regular expression tested against the 3-digit status.
    config.responseHandling = [
      // 204 No Content: success, nothing to swap.
      { code: '204', swap: false },
      // 422: the server re-rendered a form with field errors. Show it, and
      // do not treat it as an error.
      { code: '422', swap: true, error: false },
      // Any other 2xx: normal swap.
      { code: '2..', swap: true },
      // Other 4xx/5xx: keep the page as it is and raise htmx:responseError.
      // The error page HTML is never swapped into a fragment target.
      { code: '[45]..', swap: false, error: true },
      // Anything else (1xx/3xx do not normally reach XHR): do nothing.
      { code: '...', swap: false }
    ];
  }

  // ---------------------------------------------------------------- CSRF --
  // Every htmx request carries the CSRF token from <meta name="csrf-token">.
  // It is read on each request, so a token that changes on a full page load
  // is always current. Plain (non-htmx) forms use a hidden input instead.
  function csrfToken() {
    const meta = document.head &&
      document.head.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute('content') : null;
  }

  document.addEventListener('htmx:configRequest', function (event) {
    const token = csrfToken();
    if (token) {
      event.detail.headers['X-CSRF-Token'] = token;
    }
  });

  // ------------------------------------------------------- error messages --
  // On failure, show a short translated message. The server puts the strings
  // in <body data-msg-network="..." data-msg-server="...">. The raw response
  // is never shown: it may be an HTML error page or contain internal details.
  function showError(text) {
    const flash = document.getElementById('flash');
    if (!flash || !text) {
      return;
    }
    // Replace an earlier error instead of stacking identical messages.
    flash.querySelectorAll('.flash-error[data-client]').forEach(function (el) {
      el.remove();
    });
    const div = document.createElement('div');
    div.className = 'flash flash-error';
    div.setAttribute('role', 'alert');
    div.setAttribute('data-client', '');
    div.textContent = text; // textContent: never parsed as HTML
    flash.appendChild(div);
  }

  function messages() {
    return document.body ? document.body.dataset : {};
  }

  // The server answered with an error status (see responseHandling above).
  document.addEventListener('htmx:responseError', function () {
    const m = messages();
    showError(m.msgServer || m.msgNetwork);
  });

  // No answer at all: network down, server unreachable, or timed out.
  function onNetworkError() {
    const m = messages();
    showError(m.msgNetwork || m.msgServer);
  }
  document.addEventListener('htmx:sendError', onNetworkError);
  document.addEventListener('htmx:timeout', onNetworkError);

  // --------------------------------------------------------- confirmation --
  // <form data-confirm="Delete this unit?">: ask before submitting. A submit
  // button may carry its own data-confirm, which then takes precedence.
  // The listener runs in the capture phase on the document, so it runs before
  // htmx's listener on the form. If the user declines, the event is stopped
  // before htmx or the browser act on it, with or without htmx.
  // (For htmx requests not triggered by a form submit, use hx-confirm.)
  document.addEventListener('submit', function (event) {
    const form = event.target;
    if (!(form instanceof HTMLFormElement)) {
      return;
    }
    const submitter = event.submitter;
    const text = (submitter && submitter.dataset && submitter.dataset.confirm) ||
      form.dataset.confirm;
    if (text && !window.confirm(text)) {
      event.preventDefault();
      event.stopImmediatePropagation();
    }
  }, true);

  // ---------------------------------------------------------- auto-submit --
  // <select data-autosubmit> (language switch, filters) submits its form as
  // soon as the value changes. requestSubmit() fires a real submit event, so
  // htmx, data-confirm and browser validation all still apply. form.submit()
  // is only a fallback for very old browsers.
  document.addEventListener('change', function (event) {
    const select = event.target;
    if (!(select instanceof HTMLSelectElement) ||
        !select.hasAttribute('data-autosubmit') || !select.form) {
      return;
    }
    if (typeof select.form.requestSubmit === 'function') {
      select.form.requestSubmit();
    } else {
      select.form.submit();
    }
  });

  // ------------------------------------------------------------ row filter --
  // <form data-filter-form="#list" method="get"> with an input name="q" and
  // an optional select name="show" (all | on | off | own) filters the rows
  // <tr data-filter-text="..." data-state="on|off" data-own="0|1"> inside
  // #list. Without JavaScript the form is an ordinary GET and the server sends
  // the rows outside the filter with `hidden`; here the same filter runs live
  // as the user types, ignoring case and Vietnamese diacritics ("dong hoi"
  // finds "Đồng Hới"). Inside #list, [data-filter-count] (its data-template
  // holds {shown} and {total}) and [data-filter-empty] are kept up to date.
  function fold(text) {
    return String(text || '').normalize('NFD').replace(/[\u0300-\u036f]/g, '')
      .replace(/[đĐ]/g, 'd').toLowerCase().replace(/\s+/g, ' ').trim();
  }

  const foldedText = new WeakMap();

  function filterValues(form) {
    const q = form.elements.namedItem('q');
    const show = form.elements.namedItem('show');
    return {
      q: q ? q.value : '',
      show: show ? show.value : 'all'
    };
  }

  function applyFilter(form) {
    const target = document.querySelector(form.getAttribute('data-filter-form'));
    if (!target) {
      return;
    }
    const values = filterValues(form);
    const needle = fold(values.q);
    const rows = target.querySelectorAll('tr[data-filter-text]');
    let shown = 0;
    rows.forEach(function (row) {
      let folded = foldedText.get(row);
      if (folded === undefined) {
        folded = fold(row.dataset.filterText);
        foldedText.set(row, folded);
      }
      let match = !needle || folded.indexOf(needle) !== -1;
      if (match && values.show === 'own') {
        match = row.dataset.own === '1';
      } else if (match && (values.show === 'on' || values.show === 'off')) {
        match = row.dataset.state === values.show;
      }
      row.hidden = !match;
      if (match) {
        shown += 1;
      }
    });
    const count = target.querySelector('[data-filter-count]');
    if (count && count.dataset.template) {
      count.textContent = count.dataset.template
        .replace('{shown}', shown.toLocaleString(document.documentElement.lang || 'vi'))
        .replace('{total}', rows.length.toLocaleString(document.documentElement.lang || 'vi'));
    }
    const empty = target.querySelector('[data-filter-empty]');
    if (empty) {
      empty.hidden = shown > 0;
    }
    const active = Boolean(needle) || values.show !== 'all';
    const clear = form.querySelector('[data-filter-clear]');
    if (clear) {
      clear.hidden = !active;
    }
    // Keep the address in step, so Reload and a shared link show the same list.
    if (window.history && typeof window.history.replaceState === 'function') {
      const url = new URL(window.location.href);
      url.searchParams.delete('q');
      url.searchParams.delete('show');
      if (values.q.trim()) {
        url.searchParams.set('q', values.q.trim());
      }
      if (values.show !== 'all') {
        url.searchParams.set('show', values.show);
      }
      if (url.href !== window.location.href) {
        window.history.replaceState(window.history.state, '', url.href);
        // The language switch comes back to this address, filter included.
        document.querySelectorAll('input[data-current-url]').forEach(function (input) {
          input.value = url.pathname + url.search;
        });
      }
    }
  }

  function filterForms() {
    return document.querySelectorAll('form[data-filter-form]');
  }

  function setUpFilters() {
    filterForms().forEach(function (form) {
      // Filtering is live, so the submit button is not needed.
      form.querySelectorAll('[data-filter-submit]').forEach(function (button) {
        button.hidden = true;
      });
      applyFilter(form);
    });
  }

  let filterTimer = null;
  document.addEventListener('input', function (event) {
    const form = event.target && event.target.form;
    if (!form || !form.hasAttribute('data-filter-form')) {
      return;
    }
    window.clearTimeout(filterTimer);
    filterTimer = window.setTimeout(function () { applyFilter(form); }, 120);
  });
  document.addEventListener('change', function (event) {
    const form = event.target && event.target.form;
    if (form && form.hasAttribute('data-filter-form')) {
      applyFilter(form);
    }
  });
  document.addEventListener('submit', function (event) {
    const form = event.target;
    if (form instanceof HTMLFormElement && form.hasAttribute('data-filter-form')) {
      event.preventDefault();
      applyFilter(form);
    }
  });
  document.addEventListener('click', function (event) {
    const link = event.target instanceof Element && event.target.closest('[data-filter-clear]');
    const form = link && link.closest('form[data-filter-form]');
    if (!form) {
      return;
    }
    event.preventDefault();
    const q = form.elements.namedItem('q');
    const show = form.elements.namedItem('show');
    if (q) {
      q.value = '';
    }
    if (show) {
      show.value = 'all';
    }
    applyFilter(form);
    if (q) {
      q.focus();
    }
  });
  // A swapped-in list (after saving a row) comes back unfiltered: filter it
  // again before it is painted.
  document.addEventListener('htmx:afterSwap', function () {
    filterForms().forEach(applyFilter);
  });

  if (document.readyState === 'loading') {
    document.addEventListener('DOMContentLoaded', setUpFilters);
  } else {
    setUpFilters();
  }
})();
