"""Physical synthetic spectra and what is derived from them.

* :mod:`ddpayne.physics.synthesizer` — the Synthesizer interface (implemented by the ``moog`` plugin);
* :mod:`ddpayne.physics.airvac` — air ↔ vacuum wavelengths (Morton 2000);
* :mod:`ddpayne.physics.degrade` — instrument degradation shared with the data path;
* :mod:`ddpayne.physics.gradients` — the gradient-spectra container and file format
  (:class:`~ddpayne.physics.gradients.GradientSpectra`);
* :mod:`ddpayne.physics.references` — reference label points and finite-difference steps;
* :mod:`ddpayne.physics.runner` — the resumable background synthesis;
* :mod:`ddpayne.physics.build_gradients` — assembly of the gradient product.
* :mod:`ddpayne.physics.hydrogen` — the hydrogen correction (Stark-broadened Balmer and Paschen lines);
* :mod:`ddpayne.physics.sun_check` — the synthesis against the real Sun's hydrogen wings.

``physics_version`` of the products (recorded in their provenance): 1 = MOOG + linemake with H2 lines;
2 = H2 lines removed; 3 = 2 with the hydrogen correction (the first products with H I Stark wings).
"""

#: ``physics_version`` of the bundled products; the Kurucz regularizer refuses older gradient products.
PHYSICS_VERSION = 3
