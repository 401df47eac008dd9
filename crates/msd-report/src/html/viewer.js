// msd study report: the interactive 3D view. Reads the meshes embedded in #msd-data (base64
// little-endian Float32 positions in LPS mm, Uint32 triangle indices, optional Float32 signed
// deviations in mm), shows one case at a time with three.js, and renders on demand.
// #msd-status records whether the view came up (data-status="ok" or "error: ...") and where the
// canvas is, for the browser test (.ci/browser-test.sh).
(function () {
  'use strict';
  const status = document.getElementById('msd-status');
  const errors = [];
  function fail(message) {
    errors.push(String(message));
    status.dataset.status = 'error';
    status.textContent = '3D view error: ' + errors.join('; ');
  }
  window.addEventListener('error', function (e) { fail(e.message); });
  const consoleError = console.error.bind(console);
  console.error = function () { fail(Array.prototype.join.call(arguments, ' ')); consoleError.apply(null, arguments); };

  function decode(b64, Type) {
    const bin = atob(b64);
    const bytes = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
    return new Type(bytes.buffer);
  }

  // Blue (inside, -range) through white (0) to red (outside, +range), as in the PNG renders.
  function deviationColours(dev, range) {
    const c = new Float32Array(dev.length * 3);
    for (let i = 0; i < dev.length; i++) {
      const t = Math.max(-1, Math.min(1, dev[i] / range || 0));
      const fade = 1 - Math.abs(t);
      if (t >= 0) { c[3 * i] = 1; c[3 * i + 1] = fade; c[3 * i + 2] = fade; }
      else { c[3 * i] = fade; c[3 * i + 1] = fade; c[3 * i + 2] = 1; }
    }
    return c;
  }

  const data = JSON.parse(document.getElementById('msd-data').textContent);
  const host = document.getElementById('viewer');
  let renderer;
  try {
    renderer = new THREE.WebGLRenderer({ antialias: true });
  } catch (e) {
    fail('WebGL is not available in this browser (' + e.message + ')');
    return;
  }
  renderer.setPixelRatio(window.devicePixelRatio || 1);
  host.appendChild(renderer.domElement);
  const scene = new THREE.Scene();
  scene.background = new THREE.Color(0x22262e);
  const camera = new THREE.OrthographicCamera(-1, 1, 1, -1, 0.1, 10000);
  camera.up.set(0, 0, 1); // LPS: superior up
  scene.add(camera);
  scene.add(new THREE.HemisphereLight(0xffffff, 0x444444, 0.55));
  const light = new THREE.DirectionalLight(0xffffff, 0.75);
  light.position.set(-0.5, 0.3, 1); // upper left of the viewer, in camera space
  camera.add(light);
  const controls = new THREE.OrbitControls(camera, renderer.domElement);
  controls.enableDamping = false;

  const select = document.getElementById('case-select');
  const toggles = document.getElementById('mesh-toggles');
  const devToggle = document.getElementById('deviation-toggle');
  const scaleBox = document.getElementById('colour-scale');
  let shown = []; // { entry, mesh, geometry }
  let caseIndex = 0;
  let radius = 100;
  let firstFrame = true;

  function render() {
    renderer.render(scene, camera);
    const r = renderer.domElement.getBoundingClientRect();
    status.dataset.canvas = [r.left + window.scrollX, r.top + window.scrollY, r.width, r.height].map(Math.round).join(',');
    if (firstFrame) {
      firstFrame = false;
      status.dataset.firstFrameMs = performance.now().toFixed(0);
      if (errors.length === 0) {
        status.dataset.status = 'ok';
        const tris = shown.reduce(function (n, s) { return n + s.entry.triangles; }, 0);
        status.textContent = '3D view ready: ' + data.cases[caseIndex].name + ', ' + tris + ' triangles shown.';
      }
    }
  }

  function resize() {
    const w = host.clientWidth, h = host.clientHeight;
    renderer.setSize(w, h);
    const aspect = w / Math.max(1, h);
    camera.left = -radius * aspect; camera.right = radius * aspect;
    camera.top = radius; camera.bottom = -radius;
    camera.updateProjectionMatrix();
    render();
  }

  function resetView(centre) {
    controls.target.copy(centre);
    camera.position.set(centre.x, centre.y - 4 * radius, centre.z); // from the front (anterior, -y)
    camera.zoom = 1;
    camera.near = 0.1; camera.far = 10 * radius;
    camera.updateProjectionMatrix();
    controls.update();
  }

  function styleMeshes() {
    const anyPrediction = shown.some(function (s) { return s.entry.role !== 'reference' && s.mesh.visible; });
    let useDeviation = false;
    shown.forEach(function (s) {
      const mat = s.mesh.material;
      const dev = devToggle.checked && s.geometry.getAttribute('color') !== undefined;
      mat.vertexColors = dev;
      mat.color.setRGB(dev ? 1 : s.entry.colour[0] / 255, dev ? 1 : s.entry.colour[1] / 255, dev ? 1 : s.entry.colour[2] / 255);
      const translucent = s.entry.role === 'reference' && anyPrediction;
      mat.transparent = translucent; mat.opacity = translucent ? 0.3 : 1; mat.depthWrite = !translucent;
      mat.needsUpdate = true;
      useDeviation = useDeviation || (dev && s.mesh.visible);
    });
    scaleBox.hidden = !useDeviation;
    render();
  }

  function showCase(k) {
    shown.forEach(function (s) { scene.remove(s.mesh); s.geometry.dispose(); s.mesh.material.dispose(); });
    shown = [];
    toggles.textContent = '';
    caseIndex = k;
    const c = data.cases[k];
    const range = c.range_mm || 1;
    document.getElementById('scale-min').textContent = '-' + range;
    document.getElementById('scale-max').textContent = '+' + range;
    const box = new THREE.Box3();
    // The reference starts hidden when a prediction carries deviations: the colours say it all.
    const hideReference = c.meshes.some(function (m) { return m.deviation; });
    c.meshes.forEach(function (entry) {
      const geometry = new THREE.BufferGeometry();
      geometry.setAttribute('position', new THREE.BufferAttribute(decode(entry.positions, Float32Array), 3));
      geometry.setIndex(new THREE.BufferAttribute(decode(entry.indices, Uint32Array), 1));
      if (entry.deviation) {
        geometry.setAttribute('color', new THREE.BufferAttribute(deviationColours(decode(entry.deviation, Float32Array), range), 3));
      }
      geometry.computeVertexNormals();
      geometry.computeBoundingBox();
      box.union(geometry.boundingBox);
      const material = new THREE.MeshStandardMaterial({ roughness: 0.7, metalness: 0.0, side: THREE.DoubleSide });
      const mesh = new THREE.Mesh(geometry, material);
      scene.add(mesh);
      shown.push({ entry: entry, mesh: mesh, geometry: geometry });
      const label = document.createElement('label');
      const box_ = document.createElement('input');
      box_.type = 'checkbox'; box_.dataset.mesh = entry.name;
      box_.checked = !(hideReference && entry.role === 'reference');
      mesh.visible = box_.checked;
      box_.addEventListener('change', function () { mesh.visible = box_.checked; styleMeshes(); });
      const swatch = document.createElement('span');
      swatch.className = 'swatch';
      swatch.style.background = 'rgb(' + entry.colour.join(',') + ')';
      label.appendChild(box_); label.appendChild(swatch); label.appendChild(document.createTextNode(entry.name));
      toggles.appendChild(label);
    });
    const centre = new THREE.Vector3(); box.getCenter(centre);
    const size = new THREE.Vector3(); box.getSize(size);
    radius = 0.6 * Math.max(size.x, size.y, size.z, 1);
    resetView(centre);
    resize();
    styleMeshes();
  }

  data.cases.forEach(function (c, k) {
    if (c.meshes.length === 0) return;
    const option = document.createElement('option');
    option.value = k; option.textContent = c.name;
    select.appendChild(option);
  });
  select.addEventListener('change', function () { showCase(Number(select.value)); });
  devToggle.addEventListener('change', styleMeshes);
  document.getElementById('reset-view').addEventListener('click', function () {
    const b = new THREE.Box3();
    shown.forEach(function (s) { b.union(s.geometry.boundingBox); });
    const centre = new THREE.Vector3(); b.getCenter(centre);
    resetView(centre); render();
  });
  controls.addEventListener('change', render);
  window.addEventListener('resize', resize);
  document.getElementById('orientation').textContent =
    'LPS mm: x → patient left, y → posterior, z → superior. Opens facing the patient (front view).';
  const first = data.cases.findIndex(function (c) { return c.meshes.length > 0; });
  if (first >= 0) { select.value = first; showCase(first); }
})();
