/*
 * The print page's one behaviour: its "Print" button opens the browser's print dialog. The
 * Content-Security-Policy forbids inline scripts, hence this file. Without JavaScript, Ctrl+P prints
 * the same document.
 */
(function () {
  'use strict';
  document.addEventListener('DOMContentLoaded', function () {
    document.querySelectorAll('[data-print]').forEach(function (button) {
      button.addEventListener('click', function () { window.print(); });
    });
  });
})();
