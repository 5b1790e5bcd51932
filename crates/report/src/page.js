(function () {
  // Hover text for every mark that carries data-tip.
  var tip = document.getElementById("tip");
  document.addEventListener("mouseover", function (e) {
    var t = e.target.closest ? e.target.closest("[data-tip]") : null;
    if (!t) { tip.hidden = true; return; }
    tip.textContent = t.getAttribute("data-tip");
    tip.hidden = false;
  });
  document.addEventListener("mousemove", function (e) {
    tip.style.left = e.pageX + 12 + "px";
    tip.style.top = e.pageY + 12 + "px";
  });
  // Render check: each plot's drawn size and how many of its data marks have a visible box,
  // written into the page so that a blank plot is caught by reading the DOM.
  var plots = document.querySelectorAll("svg.plot");
  var out = [];
  for (var i = 0; i < plots.length; i++) {
    var svg = plots[i];
    var box = svg.getBoundingClientRect();
    var marks = svg.querySelectorAll(".mark");
    var visible = 0;
    for (var j = 0; j < marks.length; j++) {
      var b = marks[j].getBoundingClientRect();
      if (b.width > 0 || b.height > 0) visible++;
    }
    out.push({
      kind: svg.getAttribute("data-plot"),
      dictionary: svg.getAttribute("data-dictionary"),
      width: box.width,
      height: box.height,
      marks: marks.length,
      visible_marks: visible
    });
  }
  document.getElementById("render-check").textContent = JSON.stringify(out);
})();
