/*
 * GoChat web client: plain JavaScript, no build step.
 *
 * It talks to the server like any other client: REST under /api/v1/ (JWT bearer tokens,
 * refreshed with the refresh token) and the WebSocket /ws (frames of docs/realtime.md).
 * Ids are strings everywhere; seq numbers are per conversation and gap-free, so a jump
 * in seq means missed messages, which are pulled with messages/history?after_seq=.
 */
"use strict";

(() => {
  const API = "/api/v1/";
  const AUTH_KEY = "gochat.auth";
  const OUTBOX_KEY = "gochat.outbox.";
  const PAGE_SIZE = 30;
  const SYNC_LIMIT = 100;
  const ACK_TIMEOUT_MS = 10000;
  const PING_INTERVAL_MS = 25000;
  const MAX_BACKOFF_MS = 15000;
  const PONG_TIMEOUT_MS = 10000;
  // The server's MESSAGE_MAX_CONTENT_LENGTH, put on <body> by the page's template.
  const MAX_CONTENT_LENGTH = Number(document.body && document.body.dataset.maxContentLength) || 4000;
  // The counter appears from this share of the limit on.
  const COUNTER_FROM = 0.9;
  const MEMBERS_PAGE = 100;

  const $ = (id) => document.getElementById(id);

  const state = {
    auth: null, // {access, refresh, user}
    convs: new Map(), // conversation id -> conversation as GET conversations returns it
    chats: new Map(), // conversation id -> {messages: Map(seq -> message), hasMoreBefore, loadingOlder}
    outbox: new Map(), // client_msg_id -> {client_msg_id, conversation_id, content, created_at, state, error}
    activeId: null,
    ws: null,
    wsOpen: false,
    backoff: 0,
    reconnectTimer: null,
    pingTimer: null,
    ackTimers: new Map(),
    convLoad: null,
    reconnectAt: 0, // when the scheduled reconnect fires (ms), for the countdown
    countdownTimer: null,
    pongTimer: null,
    presence: new Map(), // user id -> {online, last_seen} pushed by `presence` frames
    group: null, // the open group panel: {conversationId, groupId, group, members, next}
  };

  // --- extension points (web/static/web/lifecycle.js and later features use these) ------
  // frameHandlers: WebSocket frame type -> function(data, frame); add a type with
  //   GoChat.onFrame("typing", fn).
  // messageDecorators: functions (node, message, ctx) called for every rendered message
  //   bubble (ctx: {mine, pending, conversation}); add one with GoChat.decorateMessage(fn).
  const frameHandlers = {};
  const messageDecorators = [];
  // conversationDecorators: functions (item, conversation) for each conversation list row.
  const conversationDecorators = [];
  // composeHooks: functions (conversationId, content) -> {extra?, local?} run for every send.
  const composeHooks = [];

  // --- small helpers -----------------------------------------------------------------------

  class ApiError extends Error {
    constructor(status, message, code, details) {
      super(message);
      this.status = status;
      this.code = code;
      this.details = details || {};
    }
  }

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  // Message text with http(s) links made clickable, built from text nodes and <a>
  // elements only: nothing a user typed can become markup.
  const URL_RE = /\bhttps?:\/\/[^\s<>"']+/gi;
  function linkified(text) {
    const out = document.createDocumentFragment();
    let last = 0;
    for (const match of String(text || "").matchAll(URL_RE)) {
      let url = match[0];
      // Trailing punctuation ends a sentence, not the link.
      const trail = /[.,;:!?)\]}]+$/.exec(url);
      if (trail) url = url.slice(0, -trail[0].length);
      if (match.index > last) out.append(text.slice(last, match.index));
      const a = document.createElement("a");
      a.href = url;
      a.textContent = url;
      a.target = "_blank";
      a.rel = "noopener noreferrer nofollow";
      out.append(a);
      last = match.index + url.length;
    }
    if (last < String(text || "").length) out.append(text.slice(last));
    return out;
  }

  function me() {
    return state.auth ? state.auth.user : null;
  }

  function displayName(user) {
    if (!user) return "";
    return user.nickname || user.username || "";
  }

  function newClientMsgId() {
    // randomUUID needs a secure context; getRandomValues works on plain http too.
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    const bytes = crypto.getRandomValues(new Uint8Array(16));
    return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  }

  function colorFor(id) {
    let hash = 0;
    for (const ch of String(id)) hash = (hash * 31 + ch.charCodeAt(0)) >>> 0;
    return `hsl(${hash % 360} 55% 52%)`;
  }

  function paintAvatar(node, name, id) {
    node.textContent = (name || "?").trim().charAt(0) || "?";
    node.style.background = colorFor(id || name);
  }

  function sameDay(a, b) {
    return a.getFullYear() === b.getFullYear() && a.getMonth() === b.getMonth() && a.getDate() === b.getDate();
  }

  function timeLabel(iso) {
    if (!iso) return "";
    const d = new Date(iso);
    return d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  }

  function listTimeLabel(iso) {
    if (!iso) return "";
    const d = new Date(iso);
    return sameDay(d, new Date()) ? timeLabel(iso) : d.toLocaleDateString([], { month: "short", day: "numeric" });
  }

  function dayLabel(d) {
    const today = new Date();
    const yesterday = new Date(today.getTime() - 86400000);
    if (sameDay(d, today)) return "Today";
    if (sameDay(d, yesterday)) return "Yesterday";
    return d.toLocaleDateString([], { weekday: "short", month: "short", day: "numeric", year: "numeric" });
  }

  let toastTimer = null;
  function toast(text) {
    const node = $("toast");
    node.textContent = text;
    node.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => { node.hidden = true; }, 4000);
  }

  function errorText(err) {
    if (!(err instanceof ApiError)) return "Something went wrong. Please try again.";
    if (err.status === 0) return "Cannot reach the server. Check your connection.";
    return withDetails(err.message, err.details);
  }

  // "invalid send-message (content: At most 4000 characters.)": the server's reason with
  // its per-field details, as REST answers and WebSocket error frames carry them.
  function withDetails(message, details) {
    const fieldErrors = Object.entries(details || {})
      .filter(([, v]) => (Array.isArray(v) && v.length) || typeof v === "string" || typeof v === "number")
      .map(([k, v]) => `${k}: ${Array.isArray(v) ? v.join(" ") : v}`);
    return fieldErrors.length ? `${message} (${fieldErrors.join("; ")})` : message;
  }

  // --- tokens and REST -------------------------------------------------------------------

  function saveAuth() {
    if (state.auth) localStorage.setItem(AUTH_KEY, JSON.stringify(state.auth));
    else localStorage.removeItem(AUTH_KEY);
  }

  function loadAuth() {
    try {
      const auth = JSON.parse(localStorage.getItem(AUTH_KEY) || "null");
      return auth && auth.access && auth.refresh && auth.user ? auth : null;
    } catch {
      return null;
    }
  }

  let refreshing = null;
  // true: new tokens; false: the refresh token is no longer accepted; null: server unreachable.
  function refreshTokens() {
    if (refreshing) return refreshing;
    refreshing = (async () => {
      const used = state.auth && state.auth.refresh;
      if (!used) return false;
      try {
        const res = await fetch(API + "auth/refresh", {
          method: "POST",
          headers: { "Content-Type": "application/json", Accept: "application/json" },
          body: JSON.stringify({ refresh: used }),
          credentials: "omit",
        });
        if (!res.ok) {
          // Another tab may have rotated the token already: adopt what it stored.
          const stored = loadAuth();
          if (stored && stored.refresh !== used) {
            state.auth = stored;
            return true;
          }
          return res.status >= 500 ? null : false;
        }
        const data = await res.json();
        if (!state.auth) return false;
        state.auth.access = data.access;
        if (data.refresh) state.auth.refresh = data.refresh;
        saveAuth();
        return true;
      } catch {
        return null;
      } finally {
        setTimeout(() => { refreshing = null; }, 0);
      }
    })();
    return refreshing;
  }

  async function api(method, path, body, { retry = true } = {}) {
    const headers = { Accept: "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (state.auth) headers.Authorization = `Bearer ${state.auth.access}`;
    let res;
    try {
      // No cookies: an admin session cookie would switch DRF to session auth and CSRF checks.
      res = await fetch(API + path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        credentials: "omit",
      });
    } catch {
      throw new ApiError(0, "network error");
    }
    if (res.status === 401 && retry && state.auth) {
      const refreshed = await refreshTokens();
      if (refreshed) return api(method, path, body, { retry: false });
      if (refreshed === false) signOut("Your session has expired. Please sign in again.");
      throw new ApiError(401, "not signed in", 1002);
    }
    let data = null;
    if (res.status !== 204) {
      try { data = await res.json(); } catch { data = null; }
    }
    if (!res.ok) {
      const message = (data && data.message) || `request failed (${res.status})`;
      throw new ApiError(res.status, message, data && data.code, data && data.details);
    }
    return data;
  }

  // --- sign in / out ---------------------------------------------------------------------

  let authMode = "login";

  function setAuthMode(mode) {
    authMode = mode;
    const register = mode === "register";
    $("tab-login").classList.toggle("active", !register);
    $("tab-register").classList.toggle("active", register);
    $("tab-login").setAttribute("aria-selected", String(!register));
    $("tab-register").setAttribute("aria-selected", String(register));
    $("nickname-row").hidden = !register;
    $("auth-title").textContent = register ? "Create your account" : "Welcome back";
    $("auth-subtitle").textContent = register
      ? "Pick a username your friends can find you by."
      : "Sign in to continue your conversations.";
    $("auth-submit").textContent = register ? "Create account" : "Sign in";
    $("auth-password").autocomplete = register ? "new-password" : "current-password";
    $("auth-error").hidden = true;
  }

  async function submitAuth(event) {
    event.preventDefault();
    const username = $("auth-username").value.trim();
    const password = $("auth-password").value;
    const nickname = $("auth-nickname").value.trim();
    const errorNode = $("auth-error");
    errorNode.hidden = true;
    if (!username || !password) {
      errorNode.textContent = "Enter a username and a password.";
      errorNode.hidden = false;
      return;
    }
    $("auth-submit").disabled = true;
    try {
      let tokens = null;
      if (authMode === "register") {
        const body = { username, password };
        if (nickname) body.nickname = nickname;
        const created = await api("POST", "users/register", body);
        if (created && created.access && created.refresh && created.user) tokens = created;
      }
      if (!tokens) tokens = await api("POST", "auth/login", { username, password });
      state.auth = { access: tokens.access, refresh: tokens.refresh, user: tokens.user };
      saveAuth();
      $("auth-password").value = "";
      startApp();
    } catch (err) {
      errorNode.textContent = err instanceof ApiError && err.status === 401
        ? "Wrong username or password."
        : errorText(err);
      errorNode.hidden = false;
    } finally {
      $("auth-submit").disabled = false;
    }
  }

  function signOut(reason) {
    const auth = state.auth;
    state.auth = null;
    saveAuth();
    if (auth) {
      // Best effort: blacklist the refresh token on the server.
      fetch(API + "auth/logout", {
        method: "POST",
        headers: { "Content-Type": "application/json", Authorization: `Bearer ${auth.access}` },
        body: JSON.stringify({ refresh: auth.refresh }),
        credentials: "omit",
      }).catch(() => {});
    }
    closeSocket();
    state.convs.clear();
    state.chats.clear();
    state.outbox.clear();
    state.activeId = null;
    state.presence.clear();
    closeGroupPanel();
    if (location.hash) history.replaceState(null, "", location.pathname + location.search);
    $("app-screen").hidden = true;
    $("auth-screen").hidden = false;
    document.title = "GoChat";
    if (reason) {
      $("auth-error").textContent = reason;
      $("auth-error").hidden = false;
    }
  }

  // --- conversations ---------------------------------------------------------------------

  function sortKey(conv) {
    return (conv.last_message && conv.last_message.created_at) || conv.updated_at || "";
  }

  function recountUnread(conv) {
    conv.unread = Math.max(0, (conv.last_seq || 0) - (conv.last_read_seq || 0));
  }

  function loadConversations() {
    // One request at a time; callers arriving meanwhile share it.
    if (state.convLoad) return state.convLoad;
    state.convLoad = (async () => {
      const started = Date.now();
      try {
        const data = await api("GET", "conversations");
        const list = Array.isArray(data) ? data : (data && data.results) || [];
        const fresh = new Map();
        for (const conv of list) {
          const known = state.convs.get(conv.id);
          // Keep what this page already knows to be newer (a message or read that
          // arrived over the socket while the list was in flight).
          if (known) {
            conv.last_seq = Math.max(conv.last_seq || 0, known.last_seq || 0);
            conv.last_read_seq = Math.max(conv.last_read_seq || 0, known.last_read_seq || 0);
            if (known.last_message && (!conv.last_message || known.last_message.seq > conv.last_message.seq)) {
              conv.last_message = known.last_message;
            }
            recountUnread(conv);
          }
          fresh.set(conv.id, conv);
          // The list's presence is fresh unless a push arrived after this request began.
          if (conv.type === "single" && conv.peer) {
            const pushed = state.presence.get(String(conv.peer.id));
            if (!pushed || pushed.at < started) {
              state.presence.set(String(conv.peer.id), { online: Boolean(conv.peer_online), last_seen: pushed ? pushed.last_seen : null, at: started });
            }
          }
        }
        state.convs = fresh;
        renderConversations();
        if (state.activeId && state.convs.has(state.activeId)) renderChatHeader();
      } finally {
        state.convLoad = null;
      }
    })();
    return state.convLoad;
  }

  // Pushed presence (a `presence` frame) wins over the list's peer_online, which is only
  // as fresh as the last conversation list load.
  function peerOnline(conv) {
    const pushed = conv.peer && state.presence.get(String(conv.peer.id));
    return pushed ? pushed.online : Boolean(conv.peer_online);
  }

  function conversationTitle(conv) {
    if (conv.title) return conv.title;
    if (conv.type === "group" && conv.group) return conv.group.name;
    return conv.peer ? displayName(conv.peer) : "Conversation";
  }

  function renderConversations() {
    const list = $("conversation-list");
    const convs = Array.from(state.convs.values()).sort((a, b) => sortKey(b).localeCompare(sortKey(a)));
    list.replaceChildren();
    let totalUnread = 0;
    for (const conv of convs) {
      const title = conversationTitle(conv);
      const item = el("li", "conversation");
      item.dataset.id = conv.id;
      item.tabIndex = 0;
      if (conv.id === state.activeId) item.classList.add("active");
      const avatar = el("span", "avatar");
      paintAvatar(avatar, title, conv.id);
      if (conv.type === "single") {
        const online = peerOnline(conv);
        const dot = el("span", online ? "presence-dot online" : "presence-dot");
        dot.title = online ? "Online" : "Offline";
        dot.dataset.online = String(online);
        avatar.append(dot);
      }
      const body = el("div", "conversation-body");
      const top = el("div", "conversation-top");
      top.append(el("span", "conversation-title", title), el("span", "conversation-time", listTimeLabel(sortKey(conv))));
      const bottom = el("div", "conversation-bottom");
      const preview = conv.last_message ? conv.last_message.preview || "" : conv.type === "group" ? "Group created" : "Say hello";
      const mine = conv.last_message && me() && conv.last_message.sender_id === me().id;
      bottom.append(el("span", "conversation-preview", (mine ? "You: " : "") + preview));
      if (conv.unread > 0) {
        const badge = el("span", "badge", conv.unread > 99 ? "99+" : String(conv.unread));
        badge.setAttribute("aria-label", `${conv.unread} unread`);
        bottom.append(badge);
        if (!conv.muted) totalUnread += conv.unread;
      }
      body.append(top, bottom);
      item.append(avatar, body);
      item.addEventListener("click", () => openConversation(conv.id));
      item.addEventListener("keydown", (e) => { if (e.key === "Enter") openConversation(conv.id); });
      for (const decorate of conversationDecorators) {
        try { decorate(item, conv); } catch (err) { console.error(err); }
      }
      list.append(item);
    }
    $("conversation-empty").hidden = convs.length > 0;
    document.title = totalUnread ? `(${totalUnread}) GoChat` : "GoChat";
  }

  // A message this page learned about (sent, received, synced): move the conversation up.
  function bumpConversation(message) {
    const conv = state.convs.get(message.conversation_id);
    if (!conv) return false;
    conv.last_seq = Math.max(conv.last_seq || 0, message.seq);
    if (!conv.last_message || message.seq >= conv.last_message.seq) {
      conv.last_message = {
        id: message.id,
        seq: message.seq,
        sender_id: message.sender_id,
        preview: (message.content || "").slice(0, 120),
        created_at: message.created_at,
      };
      conv.updated_at = message.created_at;
    }
    if (me() && message.sender_id === me().id) {
      conv.last_read_seq = Math.max(conv.last_read_seq || 0, message.seq);
    }
    recountUnread(conv);
    return true;
  }

  function markRead(convId) {
    const conv = state.convs.get(convId);
    if (!conv || !conv.last_seq || conv.last_read_seq >= conv.last_seq) return;
    const seq = conv.last_seq;
    conv.last_read_seq = seq;
    recountUnread(conv);
    renderConversations();
    if (state.wsOpen) {
      wsSend({ type: "read", data: { conversation_id: convId, seq } });
    } else {
      api("POST", `conversations/${convId}/read`, { seq }).catch(() => {});
    }
  }

  function pageVisible() {
    return document.visibilityState === "visible";
  }

  // --- the open chat ---------------------------------------------------------------------

  function chatOf(convId) {
    let chat = state.chats.get(convId);
    if (!chat) {
      chat = { messages: new Map(), hasMoreBefore: true, loadingOlder: false, loaded: false };
      state.chats.set(convId, chat);
    }
    return chat;
  }

  function minSeq(chat) {
    let min = Infinity;
    for (const seq of chat.messages.keys()) if (seq < min) min = seq;
    // Seqs of messages this user hid (delete for me) are known too: not a gap.
    if (chat.hidden) for (const seq of chat.hidden) if (seq < min) min = seq;
    return min === Infinity ? 0 : min;
  }

  // Highest seq up to which this page holds every message (from the oldest loaded one):
  // syncs and gap pulls start after it, so a hole is always filled.
  function contiguousTop(chat) {
    if (!chat.messages.size && !(chat.hidden && chat.hidden.size)) return 0;
    let seq = minSeq(chat);
    while (chat.messages.has(seq + 1) || (chat.hidden && chat.hidden.has(seq + 1))) seq += 1;
    return seq;
  }

  // hiddenSeqs: seqs the user hid (history/sync `hidden_seqs`), held so they are no gap.
  // A chat whose first history page is still on its way keeps what arrives meanwhile (the
  // acknowledgement of a message sent right after opening it, others' new messages): the
  // server may have answered that request before it stored them, and dropped here they
  // would be gone from the screen, the pending copy already settled. loadNewest merges the
  // page into them.
  function addMessages(convId, messages, hiddenSeqs) {
    const chat = state.chats.get(convId);
    if (!chat) return;
    if (hiddenSeqs && hiddenSeqs.length) {
      if (!chat.hidden) chat.hidden = new Set();
      for (const seq of hiddenSeqs) chat.hidden.add(seq);
    }
    for (const m of messages) {
      chat.messages.set(m.seq, m);
      // Our own message arriving another way (sync, another tab) settles its pending copy.
      if (me() && m.sender_id === me().id && state.outbox.has(m.client_msg_id)) settlePending(m.client_msg_id);
    }
    if (convId === state.activeId) renderMessages();
  }

  async function pullAfter(convId) {
    const chat = state.chats.get(convId);
    if (!chat || !chat.loaded || chat.pulling) return;
    chat.pulling = true;
    try {
      for (let page = 0; page < 50; page += 1) {
        const after = contiguousTop(chat);
        const data = await api("GET", `messages/history?conversation_id=${encodeURIComponent(convId)}&after_seq=${after}&limit=${SYNC_LIMIT}`);
        addMessages(convId, data.messages, data.hidden_seqs);
        for (const m of data.messages) bumpConversation(m);
        if (!data.has_more || !data.messages.length) break;
      }
      renderConversations();
    } catch (err) {
      if (!(err instanceof ApiError && err.status === 0)) toast(errorText(err));
    } finally {
      chat.pulling = false;
    }
  }

  async function loadNewest(convId) {
    const chat = chatOf(convId);
    const data = await api("GET", `messages/history?conversation_id=${encodeURIComponent(convId)}&limit=${PAGE_SIZE}`);
    chat.loaded = true;
    chat.hasMoreBefore = data.has_more;
    addMessages(convId, data.messages, data.hidden_seqs);
    // What arrived while the page was on its way sits above it; a hole between the two
    // (a frame the socket lost meanwhile) is pulled like any other gap.
    let top = 0;
    for (const seq of chat.messages.keys()) if (seq > top) top = seq;
    if (top > contiguousTop(chat)) pullAfter(convId);
  }

  async function loadOlder(convId, limit = PAGE_SIZE) {
    const chat = state.chats.get(convId);
    if (!chat || !chat.loaded || !chat.hasMoreBefore || chat.loadingOlder) return;
    const before = minSeq(chat);
    if (before <= 1) { chat.hasMoreBefore = false; return; }
    chat.loadingOlder = true;
    $("history-status").textContent = "Loading earlier messages…";
    const box = $("messages");
    const fromBottom = box.scrollHeight - box.scrollTop;
    try {
      const data = await api("GET", `messages/history?conversation_id=${encodeURIComponent(convId)}&before_seq=${before}&limit=${limit}`);
      chat.hasMoreBefore = data.has_more;
      addMessages(convId, data.messages, data.hidden_seqs);
      // Keep the message under the reader's eyes where it was.
      if (convId === state.activeId) box.scrollTop = box.scrollHeight - fromBottom;
    } catch (err) {
      toast(errorText(err));
    } finally {
      chat.loadingOlder = false;
      if (convId === state.activeId) renderHistoryStatus();
    }
  }

  function renderHistoryStatus() {
    const chat = state.chats.get(state.activeId);
    const node = $("history-status");
    if (!chat || !chat.loaded) node.textContent = "Loading…";
    else if (chat.hasMoreBefore) node.textContent = "Scroll up for earlier messages";
    else {
      const pending = Array.from(state.outbox.values()).some((p) => p.conversation_id === state.activeId);
      node.textContent = chat.messages.size || pending ? "Beginning of the conversation" : "No messages yet — say hello!";
    }
  }

  function renderChatHeader() {
    const conv = state.convs.get(state.activeId);
    if (!conv) return;
    const title = conversationTitle(conv);
    $("chat-title").textContent = title;
    paintAvatar($("chat-avatar"), title, conv.id);
    if (conv.type === "group" && conv.group) {
      $("chat-subtitle").textContent = `Group · ID ${conv.group.id} (share it so others can join)`;
    } else if (conv.peer) {
      const seen = state.presence.get(String(conv.peer.id));
      let status = "";
      if (peerOnline(conv)) status = " · online";
      else if (seen && seen.last_seen) status = ` · last seen ${listTimeLabel(seen.last_seen)}`;
      $("chat-subtitle").textContent = `@${conv.peer.username}${status}`;
    } else {
      $("chat-subtitle").textContent = "";
    }
    $("group-info").hidden = !(conv.type === "group" && conv.group);
  }

  // --- the URL: #/c/<conversation id> ------------------------------------------------------
  // Each open conversation has its own URL, so Back returns to the list, a reload opens the
  // same chat and a link opens it directly.

  function routeId() {
    const m = /^#\/c\/(\d+)$/.exec(location.hash);
    return m ? m[1] : null;
  }

  function setRoute(convId) {
    const target = convId ? `#/c/${convId}` : "#/";
    if (location.hash === target) return;
    if (convId && !routeId()) {
      // From the list into a chat: a new history entry, so Back leaves the chat.
      history.pushState({ fromList: true }, "", target);
    } else {
      history.replaceState(history.state, "", target);
    }
  }

  async function applyRoute() {
    if (!state.auth) return;
    const convId = routeId();
    if (convId && convId === state.activeId) return;
    if (!convId) { closeConversation(); return; }
    if (!state.convs.has(convId)) {
      try { await loadConversations(); } catch { /* shown by the list */ }
    }
    if (state.convs.has(convId)) openConversation(convId, { route: false });
    else {
      toast("That conversation is not available.");
      history.replaceState(null, "", "#/");
      closeConversation();
    }
  }

  function goBack() {
    // Back where we came from when the chat was opened from the list; a chat opened by a
    // link or a reload has no list entry behind it, so replace it with the list.
    if (history.state && history.state.fromList) history.back();
    else {
      history.replaceState(null, "", "#/");
      closeConversation();
    }
  }

  function closeConversation() {
    state.activeId = null;
    closeGroupPanel();
    $("chat-pane").hidden = true;
    $("chat-placeholder").hidden = false;
    $("app-screen").classList.remove("chat-open");
    renderConversations();
  }

  async function openConversation(convId, { route = true } = {}) {
    const conv = state.convs.get(convId);
    if (!conv) return;
    if (state.activeId !== convId) {
      closeGroupPanel();
      // The "new messages" marker sits at the first message this user has not read.
      const chat0 = chatOf(convId);
      chat0.firstUnreadSeq = (conv.last_seq || 0) > (conv.last_read_seq || 0) ? (conv.last_read_seq || 0) + 1 : null;
    }
    state.activeId = convId;
    if (route) setRoute(convId);
    $("chat-placeholder").hidden = true;
    $("chat-pane").hidden = false;
    $("app-screen").classList.add("chat-open");
    renderChatHeader();
    renderConversations();
    const chat = chatOf(convId);
    renderMessages({ toBottom: true });
    if (!chat.loaded) {
      try {
        await loadNewest(convId);
      } catch (err) {
        toast(errorText(err));
        return;
      }
      if (state.activeId !== convId) return;
      renderMessages({ toBottom: true });
      // A short first page may not fill the pane: no scrollbar, no scroll event.
      await fillPane(convId);
    }
    const marker = document.querySelector("#message-list .unread-marker");
    if (marker) marker.scrollIntoView({ block: "start" });
    if (pageVisible()) markRead(convId);
    updateCounter();
    $("composer-input").focus();
  }

  async function fillPane(convId) {
    const box = $("messages");
    for (let i = 0; i < 5; i += 1) {
      const chat = state.chats.get(convId);
      if (state.activeId !== convId || !chat.hasMoreBefore || box.scrollHeight > box.clientHeight + 40) return;
      await loadOlder(convId);
    }
  }

  function messageNode(m, { mine, showSender, pending, showMeta }) {
    const item = el("li", "message" + (mine ? " mine" : ""));
    if (pending) {
      item.dataset.state = pending.state;
      item.dataset.clientMsgId = pending.client_msg_id;
    } else {
      item.dataset.state = "sent";
      item.dataset.seq = String(m.seq);
      item.dataset.id = m.id;
    }
    if (showSender) item.append(el("span", "sender", m.sender_name || "Someone"));
    const bubble = el("div", "bubble");
    if (m.status === "recalled") bubble.textContent = "Message recalled";
    else bubble.append(linkified(m.content));
    const meta = el("div", "meta");
    meta.append(el("span", "time", timeLabel(m.created_at)));
    if (pending && pending.state === "sending") {
      meta.append(el("span", "state", "Sending…"));
    } else if (pending && pending.state === "failed") {
      const label = el("span", "state", "Not sent");
      if (pending.error) label.title = pending.error;
      meta.append(label);
      // Retry only what could succeed later: a message the server refused as bad input
      // (too long, say) would be refused again.
      if (!pending.permanent) {
        const retry = el("button", "retry", "Retry");
        retry.type = "button";
        retry.addEventListener("click", () => retrySend(pending.client_msg_id));
        meta.append(retry);
      }
      const discard = el("button", "retry discard", "Discard");
      discard.type = "button";
      discard.addEventListener("click", () => discardPending(pending.client_msg_id));
      meta.append(discard);
    } else if (mine) {
      meta.append(el("span", "state", "Sent"));
    }
    item.append(bubble);
    if (pending && pending.state === "failed" && pending.error) {
      item.append(el("div", "send-error", pending.error));
    }
    if (showMeta || (pending && pending.state === "failed")) item.append(meta);
    else item.title = `${timeLabel(m.created_at)}${mine ? " · Sent" : ""}`;
    const ctx = { mine, pending: pending || null, conversation: state.convs.get(m.conversation_id || (pending && pending.conversation_id)) };
    for (const decorate of messageDecorators) {
      try { decorate(item, m, ctx); } catch (err) { console.error(err); }
    }
    return item;
  }

  // One message as a list item, for extensions that re-render a single message in place.
  function renderMessage(m) {
    const myId = me() && me().id;
    const conv = state.convs.get(m.conversation_id);
    return messageNode(m, { mine: m.sender_id === myId, showSender: conv && conv.type === "group" && m.sender_id !== myId, pending: null, showMeta: true });
  }

  function renderMessages({ toBottom = false } = {}) {
    const convId = state.activeId;
    const chat = state.chats.get(convId);
    const conv = state.convs.get(convId);
    const list = $("message-list");
    const box = $("messages");
    const nearBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 120;
    list.replaceChildren();
    renderHistoryStatus();
    if (!chat || !conv) return;
    const myId = me() && me().id;
    const isGroup = conv.type === "group";
    const rows = Array.from(chat.messages.values()).sort((a, b) => a.seq - b.seq).map((m) => ({ m }));
    for (const p of state.outbox.values()) {
      if (p.conversation_id === convId) {
        rows.push({ m: { content: p.content, created_at: p.created_at, sender_id: myId, conversation_id: p.conversation_id, ...(p.local || {}) }, pending: p });
      }
    }
    let lastDay = null;
    let lastSender = null;
    let markerPlaced = false;
    const minute = (iso) => String(iso).slice(0, 16);
    rows.forEach((row, i) => {
      // Time and state once per run of one sender's messages within a minute.
      const next = rows[i + 1];
      row.showMeta = Boolean(row.pending) || !next || Boolean(next.pending) || next.m.sender_id !== row.m.sender_id
        || minute(next.m.created_at) !== minute(row.m.created_at);
    });
    for (const row of rows) {
      const day = new Date(row.m.created_at);
      if (!lastDay || !sameDay(day, lastDay)) {
        list.append(el("li", "day", dayLabel(day)));
        lastSender = null;
      }
      lastDay = day;
      const mine = row.m.sender_id === myId;
      if (!markerPlaced && chat.firstUnreadSeq && !row.pending && !mine && row.m.seq >= chat.firstUnreadSeq) {
        list.append(el("li", "unread-marker", "New messages"));
        markerPlaced = true;
        lastSender = null;
      }
      const showSender = isGroup && !mine && row.m.sender_id !== lastSender;
      list.append(messageNode(row.m, { mine, showSender, pending: row.pending, showMeta: row.showMeta }));
      lastSender = row.m.sender_id;
    }
    if (toBottom || nearBottom) box.scrollTop = box.scrollHeight;
  }

  // --- sending -----------------------------------------------------------------------------

  function outboxKey() {
    return me() ? OUTBOX_KEY + me().id : null;
  }

  // Unacknowledged messages survive a reload: they are sent again with the same
  // client_msg_id, which the server de-duplicates.
  function saveOutbox() {
    const key = outboxKey();
    if (!key) return;
    const items = Array.from(state.outbox.values()).map(({ client_msg_id, conversation_id, content, created_at, extra, local }) => ({
      client_msg_id, conversation_id, content, created_at, extra, local,
    }));
    if (items.length) localStorage.setItem(key, JSON.stringify(items));
    else localStorage.removeItem(key);
  }

  function restoreOutbox() {
    const key = outboxKey();
    if (!key) return;
    try {
      for (const p of JSON.parse(localStorage.getItem(key) || "[]")) {
        state.outbox.set(p.client_msg_id, { ...p, state: "sending", error: "" });
      }
    } catch {
      localStorage.removeItem(key);
    }
  }

  function wsSend(frame) {
    if (!state.wsOpen || !state.ws) return false;
    state.ws.send(JSON.stringify(frame));
    return true;
  }

  function transmit(pending) {
    pending.state = "sending";
    pending.error = "";
    clearTimeout(state.ackTimers.get(pending.client_msg_id));
    const sent = wsSend({
      type: "send-message",
      data: {
        client_msg_id: pending.client_msg_id,
        conversation_id: pending.conversation_id,
        content: pending.content,
        message_type: "text",
        // reply_to, attachment_id, message_type of an attachment (lifecycle.js)
        ...(pending.extra || {}),
      },
    });
    // Offline: the message waits in the outbox and goes out when the socket is back.
    if (sent) {
      state.ackTimers.set(pending.client_msg_id, setTimeout(() => {
        failPending(pending.client_msg_id, "The server did not confirm this message.");
      }, ACK_TIMEOUT_MS));
    }
  }

  // extra: fields for the send-message frame (reply_to, attachment_id, message_type);
  // local: how the message shows until the server's copy arrives (reply_to, attachment).
  function sendText(convId, content, { extra = null, local = null } = {}) {
    for (const hook of composeHooks) {
      const more = hook(convId, content) || {};
      if (more.extra) extra = { ...(extra || {}), ...more.extra };
      if (more.local) local = { ...(local || {}), ...more.local };
    }
    const pending = {
      client_msg_id: newClientMsgId(),
      conversation_id: convId,
      content,
      extra,
      local,
      created_at: new Date().toISOString(),
      state: "sending",
      error: "",
    };
    state.outbox.set(pending.client_msg_id, pending);
    saveOutbox();
    transmit(pending);
    if (convId === state.activeId) renderMessages({ toBottom: true });
  }

  function retrySend(clientMsgId) {
    const pending = state.outbox.get(clientMsgId);
    if (!pending) return;
    transmit(pending); // same client_msg_id: a message that did arrive is not stored twice
    if (pending.conversation_id === state.activeId) renderMessages();
  }

  // permanent: the server refused the message itself (bad input, not a member), so
  // sending it again cannot help; only Discard is offered.
  function failPending(clientMsgId, error, { permanent = false } = {}) {
    const pending = state.outbox.get(clientMsgId);
    if (!pending) return;
    clearTimeout(state.ackTimers.get(clientMsgId));
    state.ackTimers.delete(clientMsgId);
    pending.state = "failed";
    pending.error = error;
    pending.permanent = permanent;
    if (pending.conversation_id === state.activeId) renderMessages();
  }

  // The user gives up on an unsent message: it leaves the screen and localStorage.
  function discardPending(clientMsgId) {
    const pending = settlePending(clientMsgId);
    if (pending && pending.conversation_id === state.activeId) renderMessages();
  }

  function settlePending(clientMsgId) {
    clearTimeout(state.ackTimers.get(clientMsgId));
    state.ackTimers.delete(clientMsgId);
    const pending = state.outbox.get(clientMsgId);
    state.outbox.delete(clientMsgId);
    saveOutbox();
    return pending;
  }

  function submitComposer(event) {
    event.preventDefault();
    const input = $("composer-input");
    const content = input.value;
    if (!content.trim() || !state.activeId) return;
    // Over the server's limit: refused here, before it could fail there.
    if (content.length > MAX_CONTENT_LENGTH) { updateCounter(); return; }
    input.value = "";
    autoGrow();
    updateCounter();
    sendText(state.activeId, content);
  }

  // Characters left, shown near the limit; over it the send is blocked and says by how much.
  function updateCounter() {
    const length = $("composer-input").value.length;
    const node = $("composer-count");
    const over = length > MAX_CONTENT_LENGTH;
    node.hidden = length < MAX_CONTENT_LENGTH * COUNTER_FROM;
    node.textContent = over
      ? `${length - MAX_CONTENT_LENGTH} characters too long (max ${MAX_CONTENT_LENGTH})`
      : `${length} / ${MAX_CONTENT_LENGTH}`;
    node.classList.toggle("over", over);
    $("composer-send").disabled = over;
    $("composer").classList.toggle("over", over);
  }

  function autoGrow() {
    const input = $("composer-input");
    input.style.height = "auto";
    input.style.height = `${Math.min(input.scrollHeight + 2, 140)}px`;
  }

  // --- the WebSocket ---------------------------------------------------------------------

  // The badge tells the socket's real state: "Connecting…" from new WebSocket until the
  // server's first frame, "Online" while frames (pongs included) keep coming, "Offline"
  // with a countdown to the next attempt after a close or a missed pong. A click while
  // offline retries at once.
  function setConn(status) {
    const node = $("conn-status");
    node.dataset.state = status;
    clearInterval(state.countdownTimer);
    state.countdownTimer = null;
    if (status === "offline") {
      const paint = () => {
        const left = Math.max(0, Math.ceil((state.reconnectAt - Date.now()) / 1000));
        node.textContent = state.reconnectTimer ? `Offline — retrying in ${left} s` : "Offline";
      };
      paint();
      state.countdownTimer = setInterval(paint, 500);
      node.title = "Not connected. Click to retry now.";
    } else {
      node.textContent = status === "online" ? "Online" : "Connecting…";
      node.title = status === "online" ? "Connected" : "Connecting to the server";
    }
  }

  function connect() {
    clearTimeout(state.reconnectTimer);
    state.reconnectTimer = null;
    if (!state.auth || state.ws) return;
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const ws = new WebSocket(`${scheme}//${location.host}/ws?token=${encodeURIComponent(state.auth.access)}`);
    state.ws = ws;
    setConn("connecting");
    ws.onopen = () => {
      if (state.ws !== ws) return;
      state.wsOpen = true;
      onConnected();
    };
    ws.onmessage = (event) => {
      if (state.ws !== ws) return;
      let frame;
      try { frame = JSON.parse(event.data); } catch { return; }
      // Backoff is reset by a frame, not by open: a socket refused with 4001 opens first.
      state.backoff = 0;
      clearTimeout(state.pongTimer);
      state.pongTimer = null;
      if ($("conn-status").dataset.state !== "online") setConn("online");
      handleFrame(frame);
    };
    ws.onclose = (event) => socketGone(ws, event.code);
  }

  // The socket closed, or stopped answering pings (a dead network often fires no close
  // for minutes): forget it, show offline and schedule the reconnect.
  function socketGone(ws, code) {
    {
      if (state.ws !== ws) return;
      state.ws = null;
      state.wsOpen = false;
      clearInterval(state.pingTimer);
      clearTimeout(state.pongTimer);
      state.pongTimer = null;
      // Unacknowledged messages stay "sending": they are sent again after reconnect.
      for (const [id, timer] of state.ackTimers) { clearTimeout(timer); state.ackTimers.delete(id); }
      if (!state.auth) return;
      setConn("offline");
      onClosed(code);
    }
  }

  async function onClosed(code) {
    if (code === 4001 || code === 4002) {
      const refreshed = await refreshTokens();
      if (refreshed === false) {
        signOut("Your session has expired. Please sign in again.");
        return;
      }
    }
    scheduleReconnect();
  }

  function scheduleReconnect() {
    if (state.reconnectTimer || !state.auth) return;
    const base = Math.min(MAX_BACKOFF_MS, 500 * 2 ** state.backoff);
    state.backoff = Math.min(state.backoff + 1, 10);
    const delay = base * (0.75 + Math.random() * 0.5); // jitter: clients do not return in lockstep
    state.reconnectAt = Date.now() + delay;
    state.reconnectTimer = setTimeout(connect, delay);
    setConn("offline");
  }

  function ping() {
    if (!wsSend({ type: "ping" })) return;
    const ws = state.ws;
    clearTimeout(state.pongTimer);
    state.pongTimer = setTimeout(() => {
      // No frame at all since the ping: the socket is dead even if no close came.
      try { ws.close(4000, "no pong"); } catch { /* already closing */ }
      socketGone(ws, 1006);
    }, PONG_TIMEOUT_MS);
  }

  function reconnectNow() {
    if (state.auth && !state.ws) {
      state.backoff = 0;
      connect();
    }
  }

  function closeSocket() {
    clearTimeout(state.reconnectTimer);
    state.reconnectTimer = null;
    clearInterval(state.pingTimer);
    const ws = state.ws;
    state.ws = null;
    state.wsOpen = false;
    if (ws) ws.close(1000);
  }

  function onConnected() {
    ping();
    clearInterval(state.pingTimer);
    // Presence dots are pushed (`presence` frames): the list is not polled.
    state.pingTimer = setInterval(ping, PING_INTERVAL_MS);
    // Catch up: every conversation whose messages this page holds asks for what came
    // after them; the list refresh brings new conversations and unread counts.
    for (const [convId, chat] of state.chats) {
      if (chat.loaded) {
        wsSend({ type: "sync", data: { conversation_id: convId, after_seq: contiguousTop(chat), limit: SYNC_LIMIT } });
      }
    }
    loadConversations().catch(() => {});
    for (const pending of state.outbox.values()) {
      if (pending.state === "sending") transmit(pending);
    }
  }

  // Frames by type; pong and frames this client does not know are ignored.
  Object.assign(frameHandlers, {
    "send-ack": (data) => onSendAck(data),
    "new-message": (data) => onNewMessage(data.message),
    "sync-result": (data) => onSyncResult(data),
    read: (data) => onRead(data),
    presence: (data) => onPresence(data),
    error: (data) => onErrorFrame(data),
  });

  function handleFrame(frame) {
    const handler = frameHandlers[frame.type];
    if (handler) handler(frame.data || {}, frame);
  }

  function onPresence(data) {
    const now = Date.now();
    for (const u of data.users || []) {
      state.presence.set(String(u.user_id), { online: Boolean(u.online), last_seen: u.last_seen || null, at: now });
    }
    renderConversations();
    if (state.activeId) renderChatHeader();
    if (state.group) renderGroupMembers();
  }

  function onSendAck(ack) {
    const pending = settlePending(ack.client_msg_id);
    if (!pending) return;
    const message = {
      id: ack.message_id,
      conversation_id: ack.conversation_id,
      seq: ack.seq,
      sender_id: me().id,
      sender_name: displayName(me()),
      client_msg_id: ack.client_msg_id,
      message_type: "text",
      content: pending.content,
      created_at: ack.created_at,
      status: "normal",
      ...((pending.extra && pending.extra.message_type) ? { message_type: pending.extra.message_type } : {}),
      ...(pending.local || {}),
    };
    receive(message);
  }

  function onNewMessage(message) {
    if (!message) return;
    if (!state.convs.has(message.conversation_id)) {
      // A conversation this page has not seen (a new chat or group): fetch the list.
      loadConversations().then(() => notify(message)).catch(() => {});
      return;
    }
    const conv = state.convs.get(message.conversation_id);
    const chat = state.chats.get(message.conversation_id);
    // Arriving in the open chat while the tab is hidden: it is unread, so mark it.
    if (chat && message.conversation_id === state.activeId && !pageVisible() && !chat.firstUnreadSeq
        && message.seq > (conv.last_read_seq || 0)) {
      chat.firstUnreadSeq = message.seq;
    }
    receive(message);
    notify(message);
  }

  // --- desktop notifications -----------------------------------------------------------------
  // Shown for others' messages while the tab is hidden (not for muted conversations), once
  // the user allowed them with the bell button (browsers ask only after a click).

  function notificationsSupported() {
    return "Notification" in window;
  }

  function renderNotifyButton() {
    $("notify-enable").hidden = !notificationsSupported() || Notification.permission !== "default";
  }

  async function enableNotifications() {
    if (!notificationsSupported()) return;
    try { await Notification.requestPermission(); } catch { /* old callback-only API */ }
    renderNotifyButton();
  }

  function notify(message) {
    if (!notificationsSupported() || Notification.permission !== "granted" || pageVisible()) return;
    if (!me() || message.sender_id === me().id) return;
    const conv = state.convs.get(message.conversation_id);
    if (!conv || conv.muted) return;
    const title = conv.type === "group" ? `${message.sender_name || "Someone"} in ${conversationTitle(conv)}` : (message.sender_name || conversationTitle(conv));
    try {
      const n = new Notification(title, { body: (message.content || "").slice(0, 200), tag: `gochat-${conv.id}` });
      n.onclick = () => { window.focus(); openConversation(conv.id); n.close(); };
    } catch { /* e.g. a platform that only allows notifications from a service worker */ }
  }

  // One message from the socket: place it, pull any gap before it, update the list.
  function receive(message) {
    const convId = message.conversation_id;
    const chat = state.chats.get(convId);
    if (chat) {
      // Before the first history page is in, loadNewest looks for gaps once it is.
      const gap = chat.loaded && chat.messages.size > 0 && message.seq > contiguousTop(chat) + 1;
      addMessages(convId, [message]);
      if (gap) pullAfter(convId);
    }
    bumpConversation(message);
    if (convId === state.activeId && pageVisible()) markRead(convId);
    renderConversations();
  }

  function onSyncResult(data) {
    const byConv = new Map();
    for (const m of data.messages || []) {
      if (!byConv.has(m.conversation_id)) byConv.set(m.conversation_id, []);
      byConv.get(m.conversation_id).push(m);
    }
    // Hidden seqs (delete for me) of the synced range: known, so not pulled as a gap.
    const hidden = data.conversation_id ? [{ conversation_id: data.conversation_id, hidden_seqs: data.hidden_seqs }] : (data.conversations || []);
    for (const entry of hidden) {
      if (entry && entry.hidden_seqs && entry.hidden_seqs.length) {
        if (!byConv.has(entry.conversation_id)) byConv.set(entry.conversation_id, []);
        addMessages(entry.conversation_id, [], entry.hidden_seqs);
      }
    }
    let unknown = false;
    for (const [convId, messages] of byConv) {
      if (!state.convs.has(convId)) { unknown = true; continue; }
      addMessages(convId, messages);
      for (const m of messages) bumpConversation(m);
    }
    if (unknown) loadConversations().catch(() => {});
    const convId = data.conversation_id;
    if (convId && data.has_more && state.chats.has(convId)) {
      const chat = state.chats.get(convId);
      wsSend({ type: "sync", data: { conversation_id: convId, after_seq: contiguousTop(chat), limit: SYNC_LIMIT } });
    }
    if (state.activeId && pageVisible()) markRead(state.activeId);
    renderConversations();
  }

  function onRead(data) {
    // Another device of mine read up to seq.
    const conv = state.convs.get(data.conversation_id);
    if (!conv) return;
    conv.last_read_seq = Math.max(conv.last_read_seq || 0, data.seq || 0);
    recountUnread(conv);
    renderConversations();
  }

  function onErrorFrame(data) {
    if (data.client_msg_id && state.outbox.has(data.client_msg_id)) {
      // 1006 (too many frames) may pass; bad input (1001) and not allowed (1003/1005) won't.
      const permanent = data.code === 1001 || data.code === 1003 || data.code === 1005;
      failPending(data.client_msg_id, withDetails(data.message || "The message was not accepted.", data.details), { permanent });
      return;
    }
    if (data.message) toast(withDetails(data.message, data.details));
  }

  // --- new chat, groups, search ------------------------------------------------------------

  function showSidebarError(err) {
    const node = $("sidebar-error");
    node.textContent = typeof err === "string" ? err : errorText(err);
    node.hidden = false;
  }

  function togglePanel(id) {
    $("sidebar-error").hidden = true;
    for (const panel of document.querySelectorAll(".panel")) {
      panel.hidden = panel.id !== id || !panel.hidden;
    }
    const panel = $(id);
    if (panel && !panel.hidden) panel.querySelector("input").focus();
  }

  function closePanels() {
    for (const panel of document.querySelectorAll(".panel")) panel.hidden = true;
    $("sidebar-error").hidden = true;
  }

  async function startChat(event) {
    event.preventDefault();
    const username = $("chat-username").value.trim();
    if (!username) return showSidebarError("Enter the username of the person to chat with.");
    try {
      const conv = await api("POST", "conversations/create", { username });
      state.convs.set(conv.id, { ...(state.convs.get(conv.id) || {}), ...conv });
      $("chat-username").value = "";
      closePanels();
      renderConversations();
      openConversation(conv.id);
    } catch (err) {
      showSidebarError(err instanceof ApiError && err.status === 404 ? `No user named “${username}”.` : err);
    }
  }

  async function openGroupConversation(group) {
    await loadConversations();
    const groupId = String(group.id);
    const conversationId = group.conversation_id ? String(group.conversation_id) : null;
    for (const conv of state.convs.values()) {
      if (conv.id === conversationId || (conv.group && String(conv.group.id) === groupId)) {
        openConversation(conv.id);
        return;
      }
    }
    toast(`You are in “${group.name || "the group"}” (ID ${groupId}).`);
  }

  async function createGroup(event) {
    event.preventDefault();
    const name = $("group-name").value.trim();
    if (!name) return showSidebarError("Give the group a name.");
    try {
      const group = await api("POST", "groups/create", { name });
      $("group-name").value = "";
      closePanels();
      await openGroupConversation(group.group || group);
    } catch (err) {
      showSidebarError(err);
    }
  }

  async function joinGroup(event) {
    event.preventDefault();
    const groupId = $("join-group-id").value.trim();
    if (!/^\d+$/.test(groupId)) return showSidebarError("A group ID is a number, e.g. 7291050428173312.");
    try {
      const group = await api("POST", `groups/${groupId}/join`);
      $("join-group-id").value = "";
      closePanels();
      await openGroupConversation({ id: groupId, ...((group && (group.group || group)) || {}) });
    } catch (err) {
      showSidebarError(err instanceof ApiError && err.status === 404 ? "No group with that ID." : err);
    }
  }

  // The server sends the highlight HTML-escaped with <mark> around matches; rebuild it from
  // text nodes and <mark> only, so nothing else from a message can become markup.
  function highlightNode(html) {
    const holder = document.createElement("template");
    holder.innerHTML = html;
    const out = el("div", "search-hit-text");
    for (const node of holder.content.childNodes) {
      if (node.nodeType === Node.TEXT_NODE) out.append(node.textContent);
      else if (node.nodeName === "MARK") out.append(el("mark", "", node.textContent));
      else out.append(node.textContent || "");
    }
    return out;
  }

  async function runSearch(event) {
    event.preventDefault();
    const q = $("search-input").value.trim();
    if (!q) { $("search-results").hidden = true; return; }
    const list = $("search-list");
    $("search-results").hidden = false;
    $("search-summary").textContent = "Searching…";
    list.replaceChildren();
    try {
      const data = await api("GET", `search?q=${encodeURIComponent(q)}`);
      const results = data.results || [];
      $("search-summary").textContent = results.length
        ? `${results.length}${data.has_more ? "+" : ""} result${results.length === 1 ? "" : "s"} for “${q}”`
        : `Nothing found for “${q}”`;
      for (const hit of results) {
        const m = hit.message;
        const conv = state.convs.get(m.conversation_id);
        const item = el("li", "search-hit");
        const meta = el("div", "search-hit-meta", `${conv ? conversationTitle(conv) : "Conversation"} · ${m.sender_name || ""} · ${listTimeLabel(m.created_at)}`);
        item.append(meta, highlightNode(hit.highlight || ""));
        item.addEventListener("click", () => jumpTo(m.conversation_id, m.seq));
        list.append(item);
      }
    } catch (err) {
      $("search-summary").textContent = errorText(err);
    }
  }

  async function jumpTo(convId, seq) {
    if (!state.convs.has(convId)) await loadConversations();
    await openConversation(convId);
    const chat = state.chats.get(convId);
    if (!chat || !chat.loaded) return;
    for (let i = 0; i < 20 && !chat.messages.has(seq) && chat.hasMoreBefore; i += 1) {
      await loadOlder(convId, 100);
    }
    const node = document.querySelector(`#message-list li[data-seq="${seq}"]`);
    if (node) {
      node.classList.add("found");
      node.scrollIntoView({ block: "center" });
      setTimeout(() => node.classList.remove("found"), 2500);
    }
  }

  // --- the group panel: members, leave, and what owners and admins may do ---------------------

  function showGroupError(err) {
    const node = $("group-panel-error");
    node.textContent = typeof err === "string" ? err : errorText(err);
    node.hidden = false;
  }

  function closeGroupPanel() {
    state.group = null;
    const panel = $("group-panel");
    if (panel) panel.hidden = true;
    const chatNode = $("chat");
    if (chatNode) chatNode.classList.remove("panel-open");
  }

  async function openGroupPanel() {
    const conv = state.convs.get(state.activeId);
    if (!conv || !conv.group) return;
    if (state.group && state.group.conversationId === conv.id) { closeGroupPanel(); return; }
    state.group = { conversationId: conv.id, groupId: String(conv.group.id), group: null, members: [], next: null };
    $("group-panel").hidden = false;
    $("chat").classList.add("panel-open");
    $("group-panel-error").hidden = true;
    $("group-panel-title").textContent = conversationTitle(conv);
    $("group-members").replaceChildren(el("li", "muted small", "Loading members…"));
    await loadGroup();
  }

  async function loadGroup() {
    const g = state.group;
    if (!g) return;
    try {
      const [group, page] = await Promise.all([
        api("GET", `groups/${g.groupId}`),
        api("GET", `groups/${g.groupId}/members?limit=${MEMBERS_PAGE}`),
      ]);
      if (state.group !== g) return;
      g.group = group;
      g.members = page.members || [];
      g.next = page.next;
      renderGroupPanel();
    } catch (err) {
      showGroupError(err);
    }
  }

  async function moreMembers() {
    const g = state.group;
    if (!g || !g.next) return;
    try {
      const page = await api("GET", `groups/${g.groupId}/members?limit=${MEMBERS_PAGE}&after=${encodeURIComponent(g.next)}`);
      g.members.push(...(page.members || []));
      g.next = page.next;
      renderGroupPanel();
    } catch (err) {
      showGroupError(err);
    }
  }

  function renderGroupPanel() {
    const g = state.group;
    if (!g || !g.group) return;
    const role = g.group.my_role;
    const manager = role === "owner" || role === "admin";
    $("group-panel-title").textContent = g.group.name;
    $("group-panel-meta").textContent = `${g.group.member_count} member${g.group.member_count === 1 ? "" : "s"} · you are ${role || "a member"} · ID ${g.group.id}`;
    $("group-rename").hidden = !manager;
    $("group-rename-input").value = g.group.name;
    $("group-add").hidden = !manager;
    renderGroupMembers();
  }

  function memberAction(label, handler, className = "ghost small") {
    const button = el("button", className, label);
    button.type = "button";
    button.addEventListener("click", handler);
    return button;
  }

  function renderGroupMembers() {
    const g = state.group;
    if (!g || !g.group) return;
    const role = g.group.my_role;
    const myId = me() && me().id;
    const list = $("group-members");
    list.replaceChildren();
    for (const member of g.members) {
      const user = member.user || {};
      const item = el("li", "group-member");
      item.dataset.userId = user.id;
      const avatar = el("span", "avatar small-avatar");
      paintAvatar(avatar, displayName(user), user.id);
      // A dot only where presence is known (a 1:1 peer, or pushed since this page
      // loaded): the members list carries no presence, and grey would claim offline.
      const pushed = state.presence.get(String(user.id));
      if (user.id === myId || pushed) {
        const online = user.id === myId ? state.wsOpen : pushed.online;
        const dot = el("span", online ? "presence-dot online" : "presence-dot");
        dot.dataset.online = String(online);
        avatar.append(dot);
      }
      const text = el("div", "group-member-text");
      text.append(el("span", "group-member-name", displayName(user) + (user.id === myId ? " (you)" : "")));
      text.append(el("span", "muted small", `@${user.username || ""}${member.role !== "member" ? " · " + member.role : ""}`));
      const actions = el("div", "group-member-actions");
      if (user.id !== myId && member.role !== "owner") {
        if (role === "owner") {
          actions.append(member.role === "admin"
            ? memberAction("Make member", () => setRole(user.id, "member"))
            : memberAction("Make admin", () => setRole(user.id, "admin")));
        }
        if (role === "owner" || (role === "admin" && member.role === "member")) {
          actions.append(memberAction("Remove", () => removeMember(user), "ghost small danger-text"));
        }
      }
      item.append(avatar, text, actions);
      list.append(item);
    }
    $("group-members-more").hidden = !g.next;
  }

  async function groupCall(fn) {
    $("group-panel-error").hidden = true;
    try {
      await fn();
      await loadGroup();
    } catch (err) {
      showGroupError(err);
    }
  }

  function setRole(userId, role) {
    const g = state.group;
    return groupCall(() => api("POST", `groups/${g.groupId}/members/${userId}/role`, { role }));
  }

  function removeMember(user) {
    const g = state.group;
    if (!window.confirm(`Remove ${displayName(user)} from the group?`)) return undefined;
    return groupCall(() => api("DELETE", `groups/${g.groupId}/members/${user.id}`));
  }

  async function addMember(event) {
    event.preventDefault();
    const g = state.group;
    const username = $("group-add-input").value.trim();
    if (!g || !username) return;
    await groupCall(async () => {
      let user;
      try {
        user = await api("GET", `users/lookup?username=${encodeURIComponent(username)}`);
      } catch (err) {
        if (err instanceof ApiError && err.status === 404) throw new ApiError(404, `No user named “${username}”.`);
        throw err;
      }
      await api("POST", `groups/${g.groupId}/members`, { user_ids: [user.id] });
      $("group-add-input").value = "";
    });
  }

  async function renameGroup(event) {
    event.preventDefault();
    const g = state.group;
    const name = $("group-rename-input").value.trim();
    if (!g || !name) return;
    await groupCall(async () => {
      await api("PATCH", `groups/${g.groupId}`, { name });
      const conv = state.convs.get(g.conversationId);
      if (conv && conv.group) { conv.group.name = name; conv.title = name; }
      renderConversations();
      renderChatHeader();
    });
  }

  async function leaveGroup() {
    const g = state.group;
    if (!g) return;
    const name = g.group ? g.group.name : "this group";
    if (!window.confirm(`Leave “${name}”? You will no longer get its messages.`)) return;
    try {
      await api("POST", `groups/${g.groupId}/leave`);
    } catch (err) {
      showGroupError(err);
      return;
    }
    state.convs.delete(g.conversationId);
    state.chats.delete(g.conversationId);
    history.replaceState(null, "", "#/");
    closeConversation();
    toast(`You left “${name}”.`);
  }

  // --- start-up ----------------------------------------------------------------------------

  async function startApp() {
    $("auth-screen").hidden = true;
    $("app-screen").hidden = false;
    const user = me();
    $("me-name").textContent = displayName(user);
    paintAvatar($("me-avatar"), displayName(user), user.id);
    restoreOutbox();
    renderNotifyButton();
    connect();
    try {
      await loadConversations();
    } catch (err) {
      if (state.auth) toast(errorText(err));
    }
    // A link or a reload with #/c/<id> opens that conversation.
    await applyRoute();
  }

  function bind() {
    $("tab-login").addEventListener("click", () => setAuthMode("login"));
    $("tab-register").addEventListener("click", () => setAuthMode("register"));
    $("auth-form").addEventListener("submit", submitAuth);
    $("logout").addEventListener("click", () => signOut());
    $("composer").addEventListener("submit", submitComposer);
    const input = $("composer-input");
    input.addEventListener("input", () => { autoGrow(); updateCounter(); });
    input.addEventListener("keydown", (e) => {
      // Enter sends; Shift+Enter starts a new line.
      if (e.key === "Enter" && !e.shiftKey && !e.isComposing) submitComposer(e);
    });
    $("messages").addEventListener("scroll", () => {
      if ($("messages").scrollTop < 80 && state.activeId) loadOlder(state.activeId);
    });
    for (const chip of document.querySelectorAll("[data-panel]")) {
      chip.addEventListener("click", () => togglePanel(chip.dataset.panel));
    }
    for (const button of document.querySelectorAll("[data-close]")) button.addEventListener("click", closePanels);
    $("chat-back").addEventListener("click", goBack);
    $("conn-status").addEventListener("click", () => {
      if ($("conn-status").dataset.state === "offline") reconnectNow();
    });
    $("notify-enable").addEventListener("click", enableNotifications);
    $("group-info").addEventListener("click", openGroupPanel);
    $("group-panel-close").addEventListener("click", closeGroupPanel);
    $("group-members-more").addEventListener("click", moreMembers);
    $("group-add").addEventListener("submit", addMember);
    $("group-rename").addEventListener("submit", renameGroup);
    $("group-leave").addEventListener("click", leaveGroup);
    window.addEventListener("popstate", applyRoute);
    window.addEventListener("hashchange", applyRoute);
    $("panel-chat").addEventListener("submit", startChat);
    $("panel-group").addEventListener("submit", createGroup);
    $("panel-join").addEventListener("submit", joinGroup);
    $("search-form").addEventListener("submit", runSearch);
    $("search-close").addEventListener("click", () => {
      $("search-results").hidden = true;
      $("search-input").value = "";
    });
    document.addEventListener("visibilitychange", () => {
      if (pageVisible() && state.activeId) markRead(state.activeId);
      if (pageVisible()) reconnectNow();
    });
    window.addEventListener("online", reconnectNow);
    window.addEventListener("storage", (e) => {
      // Signed out (or in as someone else) in another tab.
      if (e.key !== AUTH_KEY) return;
      const stored = loadAuth();
      if (!stored) { if (state.auth) signOut(); return; }
      if (state.auth && stored.user.id === state.auth.user.id) state.auth = stored;
      else location.reload();
    });
  }

  // For scripts loaded after this one (web/static/web/lifecycle.js): the page's state and
  // the small pieces they need, without reaching into this closure.
  window.GoChat = {
    state,
    api,
    ApiError,
    refreshTokens,
    wsSend,
    el,
    linkified,
    me,
    displayName,
    conversationTitle,
    timeLabel,
    errorText,
    toast,
    frameHandlers,
    onFrame(type, handler) { frameHandlers[type] = handler; },
    decorateMessage(fn) { messageDecorators.push(fn); },
    decorateConversation(fn) { conversationDecorators.push(fn); },
    onCompose(fn) { composeHooks.push(fn); },
    sendText,
    addMessages,
    renderMessage,
    renderMessages: (options) => renderMessages(options),
    renderConversations,
    openConversation,
  };

  document.addEventListener("DOMContentLoaded", () => {
    bind();
    state.auth = loadAuth();
    if (state.auth) startApp();
    else $("auth-screen").hidden = false;
  });
})();
