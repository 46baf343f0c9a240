/*
 * app.js: the front end's logic. One WAMP session (Autobahn|JS, vendored in
 * /vendor/autobahn.min.js) to the gateway's /websocket. A procedure is the
 * rpc's NATS subject, a topic "a.b" the NATS subject "events.a.b" (where no
 * rpc listens); payloads are [args, kwargs].
 *
 * With GATEWAY_AUTH on the gateway, WELCOME carries authid, authrole and
 * authmethod: the page then shows its Sign in control. Signing in reopens
 * the session with WAMP-Ticket (authmethods ["ticket"], the ticket being a
 * bearer token or JWT); signing out reopens it anonymously.
 */
(function () {
  "use strict";

  var params = new URLSearchParams(window.location.search);
  var realm = params.get("realm") || "realm1";
  var wsUrl = (window.location.protocol === "https:" ? "wss://" : "ws://") +
    window.location.host + "/websocket";

  var $ = function (id) { return document.getElementById(id); };
  var session = null;
  var subscriptions = {}; // topic -> autobahn.Subscription
  var eventCount = 0;
  var MAX_EVENTS = 200;

  $("endpoint").textContent = wsUrl + " · realm " + realm;

  function setStatus(state, text) {
    $("status").setAttribute("data-state", state);
    $("status-text").textContent = text;
  }

  function say(id, text, kind) {
    var el = $(id);
    el.textContent = text;
    el.className = "message" + (kind ? " " + kind : "");
  }

  function errorText(e) {
    if (e && e.error) { // autobahn.Error
      var msg = e.args && e.args.length ? String(e.args[0]) : "";
      return e.error + (msg ? ": " + msg : "");
    }
    return String(e && e.message ? e.message : e);
  }

  // "[args, kwargs]", "[args]", "[]", "" or "{kwargs}", like the gateway.
  function parsePayload(text) {
    var t = text.trim();
    if (t === "") return { args: [], kwargs: {} };
    var v = JSON.parse(t);
    if (Array.isArray(v)) {
      if (v.length > 2) throw new Error("expected [args, kwargs]");
      var args = v.length > 0 ? v[0] : [];
      var kwargs = v.length > 1 ? v[1] : {};
      if (!Array.isArray(args)) throw new Error("args must be a list");
      if (kwargs === null || typeof kwargs !== "object" || Array.isArray(kwargs)) {
        throw new Error("kwargs must be an object");
      }
      return { args: args, kwargs: kwargs };
    }
    if (v !== null && typeof v === "object") return { args: [], kwargs: v };
    throw new Error("expected [args, kwargs] or {kwargs}");
  }

  function setBusy(connected) {
    ["sub-btn", "pub-btn", "call-btn", "signin-btn", "signout-btn"].forEach(function (id) {
      $(id).disabled = !connected;
    });
  }

  // The text for wamp.error.not_authorized (kwargs {code, type}), else null.
  // 401: no credentials, so sign in; 403: the credentials (or anonymity)
  // lack a scope, which the gateway's message names: "... needs the
  // scope(s) 'a b'". what: e.g. "call thing_service.create_thing".
  function deniedText(e, what) {
    if (!e || e.error !== "wamp.error.not_authorized") return null;
    var code = e.kwargs && e.kwargs.code;
    if (code === 401) return "Not authorized (401): sign in to " + what + ".";
    if (code !== 403) return null;
    var msg = e.args && e.args.length ? String(e.args[0]) : "";
    var m = /needs the scopes? '([^']*)'/.exec(msg);
    var names = m ? m[1].split(" ").filter(Boolean) : [];
    var scopes = names.length === 0 ? "the scope it needs"
      : (names.length === 1 ? "the scope " : "the scopes ") + names.join(", ");
    return signedInAs === null
      ? "Not allowed (403): sign in with credentials that have " + scopes + " to " + what + "."
      : "Not allowed (403): your credentials lack " + scopes + " to " + what + ".";
  }

  function refusalText(e, what) {
    return deniedText(e, what) || "Refused: " + errorText(e);
  }

  // ---- events

  function addEvent(topic, args, kwargs, details) {
    eventCount++;
    $("event-count").textContent = String(eventCount);
    $("events-empty").hidden = true;
    var li = document.createElement("li");
    li.setAttribute("data-topic", topic);
    li.setAttribute("data-args", JSON.stringify(args || []));
    li.setAttribute("data-kwargs", JSON.stringify(kwargs || {}));
    var meta = document.createElement("div");
    meta.className = "meta";
    var t = document.createElement("span");
    t.className = "topic";
    t.textContent = topic;
    var when = document.createElement("span");
    when.textContent = new Date().toLocaleTimeString() +
      (details && details.publication ? " · #" + details.publication : "");
    meta.appendChild(t);
    meta.appendChild(when);
    var pre = document.createElement("pre");
    pre.textContent = JSON.stringify([args || [], kwargs || {}]);
    li.appendChild(meta);
    li.appendChild(pre);
    var list = $("events");
    list.insertBefore(li, list.firstChild);
    while (list.children.length > MAX_EVENTS) list.removeChild(list.lastChild);
  }

  $("clear-btn").addEventListener("click", function () {
    $("events").textContent = "";
    eventCount = 0;
    $("event-count").textContent = "0";
    $("events-empty").hidden = false;
  });

  // ---- subscribe

  function renderSubscriptions() {
    var ul = $("subscriptions");
    ul.textContent = "";
    Object.keys(subscriptions).forEach(function (topic) {
      var li = document.createElement("li");
      li.setAttribute("data-topic", topic);
      li.appendChild(document.createTextNode(topic));
      var b = document.createElement("button");
      b.type = "button";
      b.className = "link";
      b.title = "Unsubscribe from " + topic;
      b.setAttribute("aria-label", "Unsubscribe from " + topic);
      b.textContent = "✕";
      b.addEventListener("click", function () { unsubscribe(topic); });
      li.appendChild(b);
      ul.appendChild(li);
    });
  }

  function subscribe(topic) {
    if (!session) return;
    if (subscriptions[topic]) {
      say("sub-message", "Already subscribed to " + topic, "ok");
      return;
    }
    say("sub-message", "Subscribing to " + topic + "…");
    session.subscribe(topic, function (args, kwargs, details) {
      addEvent(topic, args, kwargs, details);
    }).then(function (sub) {
      subscriptions[topic] = sub;
      renderSubscriptions();
      say("sub-message", "Subscribed to " + topic, "ok");
    }, function (e) {
      say("sub-message", refusalText(e, "subscribe to " + topic), "error");
    });
  }

  function unsubscribe(topic) {
    var sub = subscriptions[topic];
    if (!sub || !session) return;
    session.unsubscribe(sub).then(function () {
      delete subscriptions[topic];
      renderSubscriptions();
      say("sub-message", "Unsubscribed from " + topic, "ok");
    }, function (e) {
      say("sub-message", "Unsubscribe failed: " + errorText(e), "error");
    });
  }

  $("sub-form").addEventListener("submit", function (ev) {
    ev.preventDefault();
    var topic = $("sub-topic").value.trim();
    if (topic) subscribe(topic);
  });

  // ---- publish

  $("pub-form").addEventListener("submit", function (ev) {
    ev.preventDefault();
    if (!session) return;
    var topic = $("pub-topic").value.trim();
    var p;
    try {
      p = parsePayload($("pub-data").value);
    } catch (e) {
      say("pub-message", "Data is not [args, kwargs]: " + errorText(e), "error");
      return;
    }
    say("pub-message", "Publishing to " + topic + "…");
    session.publish(topic, p.args, p.kwargs, { acknowledge: true, exclude_me: false })
      .then(function (pub) {
        say("pub-message", "Published to " + topic + " (#" + pub.id + ")", "ok");
      }, function (e) {
        say("pub-message", refusalText(e, "publish to " + topic), "error");
      });
  });

  // ---- call

  function showResult(text, value, isError) {
    var box = $("call-result");
    box.hidden = false;
    box.className = "result" + (isError ? " error" : "");
    box.textContent = "";
    if (value !== undefined) {
      var v = document.createElement("div");
      v.className = "value";
      v.textContent = value;
      box.appendChild(v);
    }
    box.appendChild(document.createTextNode(text));
  }

  $("call-form").addEventListener("submit", function (ev) {
    ev.preventDefault();
    if (!session) return;
    var proc = $("call-proc").value.trim();
    var p;
    try {
      p = parsePayload($("call-data").value);
    } catch (e) {
      showResult("Arguments are not [args, kwargs]: " + errorText(e), undefined, true);
      return;
    }
    var started = performance.now();
    showResult("Calling " + proc + "…");
    session.call(proc, p.args, p.kwargs).then(function (res) {
      var args, kwargs;
      if (res instanceof autobahn.Result) {
        args = res.args || [];
        kwargs = res.kwargs || {};
      } else {
        args = res === undefined ? [] : [res];
        kwargs = {};
      }
      var ms = (performance.now() - started).toFixed(1);
      var first = args.length === 1 && typeof args[0] === "string" ? args[0] : undefined;
      showResult(JSON.stringify([args, kwargs]) + "  (" + ms + " ms)", first, false);
    }, function (e) {
      showResult(deniedText(e, "call " + proc) || errorText(e), undefined, true);
    });
  });

  // ---- things, live: the list of thing_service, kept current by its events
  // (thing_service.thing_created, .thing_renamed, .thing_deleted: each
  // [[], {uuid, name, is_created_at}]), which its outbox publishes as each
  // change commits.

  var THING_EVENTS = ["thing_created", "thing_renamed", "thing_deleted"];
  var things = {}; // uuid -> li

  function thingsState(state, text) {
    $("things-state").setAttribute("data-state", state);
    $("things-state").textContent = text;
  }

  function showThing(t, event) {
    var li = things[t.uuid];
    if (event === "thing_deleted") {
      if (li) li.parentNode.removeChild(li);
      delete things[t.uuid];
    } else {
      if (!li) {
        li = document.createElement("li");
        li.setAttribute("data-uuid", t.uuid);
        var name = document.createElement("span");
        name.className = "name";
        var id = document.createElement("code");
        id.textContent = t.uuid.slice(0, 8);
        id.title = t.uuid;
        li.appendChild(name);
        li.appendChild(id);
        $("things").insertBefore(li, $("things").firstChild);
        things[t.uuid] = li;
      }
      li.setAttribute("data-name", t.name);
      li.firstChild.textContent = t.name;
      if (event) {
        li.classList.remove("flash");
        void li.offsetWidth; // restart the animation
        li.classList.add("flash");
      }
    }
    $("thing-count").textContent = String(Object.keys(things).length);
  }

  function watchThings(s) {
    var gen = generation; // a session replaced by signing in or out is ignored
    $("things").textContent = "";
    things = {};
    thingsState("loading", "loading…");
    // Subscribe first, then load: a change in between shows up twice, which
    // showThing absorbs, rather than not at all.
    Promise.all(THING_EVENTS.map(function (ev) {
      return s.subscribe("thing_service." + ev, function (args, kwargs) {
        if (gen === generation && kwargs && typeof kwargs.uuid === "string") showThing(kwargs, ev);
      });
    })).then(function () {
      return s.call("thing_service.get_things", [], { limit: 1000 });
    }).then(function (res) {
      if (gen !== generation) return;
      // get_things answers [things, {next}]: the things are the args.
      (res && res.args ? res.args : []).forEach(function (t) { showThing(t, null); });
      thingsState("live", "live: changes show as they commit");
    }).catch(function (e) {
      if (gen === generation) thingsState("error", "thing_service: " + errorText(e));
    });
  }

  // ---- signing in
  //
  // The credential lives in this closure only (the connection's onchallenge):
  // never in localStorage, sessionStorage or a cookie, so reloading the page
  // signs out. The field is emptied as soon as it is read.

  // The gateway reads at most 8192 bytes of "Bearer <ticket>"
  // (GW_AUTH_MAX_HEADER): longer is refused here, before it is sent.
  var MAX_TICKET = 8192 - "Bearer ".length;
  var connection = null;
  var generation = 0;   // of the current connection: older ones are ignored
  var signedInAs = null; // authid while the session is a user's
  var signingIn = false; // the current connection carries a new credential

  function showAuth(details) {
    var on = !!(details && details.authmethod);
    $("auth").hidden = !on;
    if (!on) return;
    var user = details.authrole !== "anonymous";
    signedInAs = user ? String(details.authid) : null;
    var who = $("auth-who");
    who.setAttribute("data-state", user ? "user" : "anonymous");
    who.textContent = user ? "Signed in as " + signedInAs : "Not signed in";
    // A session identified by the handshake (a natsrpc_token cookie) cannot
    // be signed out from here: only the ticket is the page's.
    $("signin-form").hidden = user;
    $("signout-btn").hidden = !(user && details.authmethod === "ticket");
  }

  function openConnection(ticket) {
    var gen = ++generation;
    var opts = {
      url: wsUrl,
      realm: realm,
      protocols: ["wamp.2.json"],
      max_retries: -1,
      initial_retry_delay: 1,
      max_retry_delay: 10,
    };
    if (ticket !== null) {
      // Every reconnect answers the CHALLENGE again with the same ticket.
      opts.authmethods = ["ticket"];
      opts.onchallenge = function () { return ticket; };
    }
    signingIn = ticket !== null;
    var c = new autobahn.Connection(opts);
    c.onopen = function (s, details) {
      if (gen !== generation) return;
      if (signingIn) say("auth-message", "", "");
      signingIn = false;
      onSession(s, details);
    };
    c.onclose = function (reason, details) {
      if (gen !== generation) return true; // replaced: stop retrying
      session = null;
      signedInAs = null;
      setBusy(false);
      var why = details && details.reason;
      // An ABORT (not a lost socket, not a GOODBYE) of a ticket session: the
      // gateway refused the credential, now or on a reconnect. Go on
      // anonymously rather than retrying a credential that cannot work.
      if (ticket !== null && why && why.indexOf("wamp.close.") !== 0) {
        say("auth-message", (signingIn ? "Sign-in refused: " : "Signed out: the gateway refused the token: ") +
          (details.message || why), "error");
        openConnection(null);
        return true;
      }
      var again = details && details.will_retry;
      setStatus(again ? "connecting" : "disconnected",
        again ? "reconnecting…" : "disconnected (" + reason + ")");
      return false;
    };
    connection = c;
    c.open();
  }

  // Closes the current connection (its onclose is then ignored) and opens
  // one with ticket (null: anonymous).
  function reopen(ticket) {
    var old = connection;
    session = null;
    setBusy(false);
    setStatus("connecting", "connecting…");
    openConnection(ticket);
    try {
      old.close();
    } catch (e) {
      // "connection already closed": between retries, nothing to close
    }
  }

  $("signin-form").addEventListener("submit", function (ev) {
    ev.preventDefault();
    if (!session) return; // a sign-in (or out) is under way
    var ticket = $("signin-token").value.trim();
    $("signin-token").value = "";
    if (ticket === "") {
      say("auth-message", "Enter a token to sign in.", "error");
      return;
    }
    var bytes = new TextEncoder().encode(ticket).length;
    if (bytes > MAX_TICKET) {
      say("auth-message", "That token is too long: " + bytes + " bytes; the gateway takes at most " +
        MAX_TICKET + ".", "error");
      return;
    }
    say("auth-message", "Signing in…", "");
    reopen(ticket);
  });

  $("signout-btn").addEventListener("click", function () {
    if (!session) return;
    say("auth-message", "Signed out.", "ok");
    reopen(null);
  });

  // ---- the connection

  function onSession(s, details) {
    session = s;
    setStatus("connected", "connected");
    showAuth(details);
    setBusy(true);
    // Subscriptions do not survive a new session: make them again.
    var topics = Object.keys(subscriptions);
    subscriptions = {};
    renderSubscriptions();
    topics.forEach(subscribe);
    watchThings(s);
  }

  setBusy(false);
  openConnection(null);

  // For tests and curious people.
  window.natsrpcPage = {
    get connection() { return connection; },
    get subscriptions() { return subscriptions; },
  };
})();
