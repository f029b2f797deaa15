// hubctl web UI: follows a workflow job's log live on the run page, the only page
// that loads this script. It reads server-sent events from the URL in the log's
// data-stream attribute and appends each chunk as text (never as HTML). Without
// JavaScript the page shows the log as it was when loaded.
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  var log = document.getElementById("log");
  var state = document.getElementById("log-state");
  if (!log || !log.dataset.stream || !window.EventSource) {
    return;
  }
  var es = new EventSource(log.dataset.stream);
  if (state) {
    state.textContent = "Following the log live…";
  }
  es.addEventListener("chunk", function (e) {
    var c;
    try {
      c = JSON.parse(e.data);
    } catch (err) {
      return;
    }
    var atEnd = log.scrollTop + log.clientHeight >= log.scrollHeight - 4;
    log.appendChild(document.createTextNode(c.data));
    if (atEnd) {
      log.scrollTop = log.scrollHeight;
    }
  });
  es.addEventListener("end", function (e) {
    es.close();
    var s = "";
    try {
      s = JSON.parse(e.data).state || "";
    } catch (err) {
      s = "";
    }
    if (state) {
      state.textContent = "The job has ended" + (s ? " (" + s.replace(/_/g, " ") + ")" : "") + ": reload the page to see its state.";
    }
  });
});
