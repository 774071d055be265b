/* lti-publish: the end of an LTI Dynamic Registration (1EdTech "LTI Dynamic Registration" 1.0,
 * section 3.6.3). The tool's page tells the platform's window that the registration is done by
 * posting {subject: "org.imsglobal.lti.close"} to window.opener (a registration opened in a new
 * window) or window.parent (in a frame), at the platform's origin only: the platform then closes
 * the window or the frame and shows its new tool. The Close button posts it again and closes a
 * window the page opened itself; without a platform window, the page just stays as it is.
 */
(function () {
  "use strict";
  var node = document.getElementById("lti-registration");
  var config = node ? JSON.parse(node.textContent) : null;
  if (!config) {
    return;
  }

  function platformWindow() {
    if (window.opener && window.opener !== window) {
      return window.opener;
    }
    return window.parent !== window ? window.parent : null;
  }

  function notify() {
    var target = platformWindow();
    if (!target || !config.platform_origin) {
      return false;
    }
    try {
      target.postMessage({subject: config.close_subject}, config.platform_origin);
      return true;
    } catch (e) {
      return false;
    }
  }

  notify();
  var button = document.getElementById("lti-registration-close");
  if (button) {
    button.addEventListener("click", function () {
      notify();
      if (window.opener) {
        window.close();
      }
    });
  }
})();
