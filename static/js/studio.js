/* lti-publish: the Studio editor of the LTI publish XBlock, and copy buttons for launch details.
 *
 * Expected markup (the block's studio_view):
 *   <form class="lti-publish-studio">
 *     <div class="lti-publish-studio__field"><label>..</label><input name="display_name" ...></div>
 *     ...
 *     <div class="lti-publish-studio__actions">
 *       <button type="submit" class="lti-button">Save</button>
 *       <button type="button" class="lti-button lti-button--secondary" data-lti-action="cancel">Cancel</button>
 *       <span class="lti-publish-studio__status" role="status"></span>
 *     </div>
 *   </form>
 *   <dl class="lti-launch-details"> <dt>..</dt><dd><code>URL</code></dd> ... </dl>
 *
 * Every named field is sent as JSON to the block's `save_settings` handler (checkboxes as booleans,
 * number inputs as numbers). The handler answers {"result": "success"} or {"errors": {field: message}}.
 */
(function (window) {
  'use strict';

  /* The block's own catalog first (lti_xblock.i18n.js_catalog), then the page's. */
  function gettext(message) {
    var catalog = window.LtiPublishCatalog || {};
    if (Object.prototype.hasOwnProperty.call(catalog, message)) {
      return catalog[message];
    }
    return typeof window.gettext === 'function' ? window.gettext(message) : message;
  }

  function rootOf(element) {
    // The XBlock runtime passes a DOM element; some runtimes pass a jQuery object.
    return element && element.jquery ? element[0] : element;
  }

  function csrfToken() {
    var match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    return match ? decodeURIComponent(match[1]) : '';
  }

  function copyText(text) {
    if (window.navigator.clipboard && window.isSecureContext) {
      return window.navigator.clipboard.writeText(text);
    }
    // Fallback for plain-http pages (the demo) and older browsers.
    return new Promise(function (resolve, reject) {
      var area = document.createElement('textarea');
      area.value = text;
      area.setAttribute('readonly', '');
      area.style.position = 'fixed';
      area.style.opacity = '0';
      document.body.appendChild(area);
      area.select();
      try {
        if (document.execCommand('copy')) { resolve(); } else { reject(new Error('copy refused')); }
      } catch (err) {
        reject(err);
      } finally {
        document.body.removeChild(area);
      }
    });
  }

  /* Add a "Copy" button after every URL of the launch details inside `root`. */
  function LtiPublishCopyButtons(root) {
    root = rootOf(root) || document;
    var codes = root.querySelectorAll('.lti-launch-details dd > code');
    Array.prototype.forEach.call(codes, function (code) {
      if (code.nextElementSibling && code.nextElementSibling.classList.contains('lti-copy')) {
        return;
      }
      var button = document.createElement('button');
      button.type = 'button';
      button.className = 'lti-copy';
      button.textContent = gettext('Copy');
      button.setAttribute('aria-label', gettext('Copy to clipboard'));
      button.addEventListener('click', function () {
        copyText(code.textContent.trim()).then(function () {
          button.textContent = gettext('Copied');
          button.classList.add('is-copied');
          window.setTimeout(function () {
            button.textContent = gettext('Copy');
            button.classList.remove('is-copied');
          }, 2000);
        }, function () {
          button.textContent = gettext('Select and copy the address by hand');
        });
      });
      code.insertAdjacentElement('afterend', button);
    });
  }

  function formValues(form) {
    var values = {};
    Array.prototype.forEach.call(form.elements, function (field) {
      if (!field.name || field.disabled || field.type === 'submit' || field.type === 'button') {
        return;
      }
      if (field.type === 'checkbox') {
        values[field.name] = field.checked;
      } else if (field.type === 'radio') {
        if (field.checked) { values[field.name] = field.value; }
      } else if (field.type === 'number') {
        values[field.name] = field.value === '' ? null : Number(field.value);
      } else {
        values[field.name] = field.value;
      }
    });
    return values;
  }

  function LtiPublishStudio(runtime, element) {
    var root = rootOf(element);
    var form = root.querySelector('form.lti-publish-studio') || root.querySelector('form');
    var status = root.querySelector('.lti-publish-studio__status');
    var saveUrl = runtime.handlerUrl(root, 'save_settings');

    LtiPublishCopyButtons(root);
    if (!form) {
      return;
    }

    function show(message, kind) {
      if (!status) { return; }
      status.textContent = message;
      status.className = 'lti-publish-studio__status' + (kind ? ' is-' + kind : '');
    }

    function fail(message) {
      show(message, 'error');
      if (runtime.notify) {
        runtime.notify('error', {title: gettext('Unable to save the settings'), message: message});
      }
    }

    form.addEventListener('submit', function (event) {
      event.preventDefault();
      var buttons = form.querySelectorAll('button[type="submit"]');
      Array.prototype.forEach.call(buttons, function (b) { b.disabled = true; });
      show(gettext('Saving…'));
      if (runtime.notify) { runtime.notify('save', {state: 'start'}); }

      window.fetch(saveUrl, {
        method: 'POST',
        credentials: 'same-origin',
        headers: {
          'Content-Type': 'application/json',
          'Accept': 'application/json',
          'X-CSRFToken': csrfToken(),
          'X-Requested-With': 'XMLHttpRequest'
        },
        body: JSON.stringify(formValues(form))
      }).then(function (response) {
        return response.json().catch(function () { return {}; }).then(function (data) {
          return {ok: response.ok, data: data || {}};
        });
      }).then(function (reply) {
        var errors = reply.data.errors;
        if (!reply.ok || (errors && Object.keys(errors).length)) {
          var messages = errors ? Object.keys(errors).map(function (k) { return errors[k]; }) : [];
          fail(messages.length ? messages.join(' ') : gettext('The settings could not be saved.'));
          return;
        }
        show(gettext('Saved.'), 'ok');
        if (runtime.notify) { runtime.notify('save', {state: 'end'}); }
      }, function () {
        fail(gettext('The server could not be reached. Please try again.'));
      }).then(function () {
        Array.prototype.forEach.call(buttons, function (b) { b.disabled = false; });
      });
    });

    var cancel = root.querySelector('[data-lti-action="cancel"]');
    if (cancel) {
      cancel.addEventListener('click', function (event) {
        event.preventDefault();
        if (runtime.notify) { runtime.notify('cancel', {}); }
      });
    }
  }

  /* The instructor view of the student view: copy buttons for its launch details. */
  function LtiPublishInstructor(runtime, element) {
    LtiPublishCopyButtons(rootOf(element));
  }

  window.LtiPublishStudio = LtiPublishStudio;
  window.LtiPublishInstructor = LtiPublishInstructor;
  window.LtiPublishCopyButtons = LtiPublishCopyButtons;
}(window));
