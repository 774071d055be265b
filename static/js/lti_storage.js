/* lti-publish: the LTI platform-storage round trip (1EdTech "LTI Client Side postMessages" and
 * "Platform Storage"). The login page stores the launch's state with the platform's frame
 * (lti.put_data) and then continues to the platform; the browser check page reads it back
 * (lti.get_data) and re-posts the launch from the tool's own origin with the value found. Only
 * messages from the platform's origin are believed. Whatever fails (no frame, no answer, an error
 * answer) falls back: the login to the cookie login, the check to a plain re-post, which the tool
 * then binds by cookie or refuses with a "new window" link.
 */
(function () {
  "use strict";
  var TIMEOUT_MS = 3000;

  function config(id) {
    var node = document.getElementById(id);
    return node ? JSON.parse(node.textContent) : null;
  }

  function storageFrame(target) {
    if (!target || window.parent === window) {
      return null;
    }
    if (target === "_parent") {
      return window.parent;
    }
    try {
      return window.parent.frames[target] || null;
    } catch (e) {
      return null;
    }
  }

  /* One request to the platform's storage frame; calls done(value or null) exactly once. */
  function ask(frame, origin, message, done) {
    var messageId = "lti-publish-" + Math.random().toString(36).slice(2) + Date.now().toString(36);
    var finished = false;
    function finish(value) {
      if (!finished) {
        finished = true;
        window.removeEventListener("message", onMessage);
        done(value);
      }
    }
    function onMessage(event) {
      var data = event.data;
      if (event.origin !== origin || !data || typeof data !== "object") {
        return;
      }
      if (data.subject !== message.subject + ".response" || data.message_id !== messageId) {
        return;
      }
      finish(data.error ? null : (typeof data.value === "string" ? data.value : ""));
    }
    window.addEventListener("message", onMessage);
    message.message_id = messageId;
    try {
      frame.postMessage(message, origin);
    } catch (e) {
      finish(null);
      return;
    }
    window.setTimeout(function () { finish(null); }, TIMEOUT_MS);
  }

  var login = config("lti-login");
  if (login) {
    var frame = storageFrame(login.storage_target);
    if (!frame) {
      window.location.replace(login.fallback_url);
      return;
    }
    ask(frame, login.platform_origin, {subject: "lti.put_data", key: login.storage_key, value: login.state},
      function (stored) {
        window.location.replace(stored !== null ? login.auth_url : login.fallback_url);
      });
    return;
  }

  var check = config("lti-check");
  if (check) {
    var form = document.getElementById("lti-repost");
    var submit = function (value) {
      if (value !== null) {
        form.elements.lti_storage_value.value = value;
      }
      form.submit();
    };
    var storage = check.storage_target ? storageFrame(check.storage_target) : null;
    if (!storage) {
      submit(null);
      return;
    }
    ask(storage, check.platform_origin, {subject: "lti.get_data", key: check.storage_key}, submit);
  }
})();
