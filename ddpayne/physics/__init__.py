"""Physical synthetic spectra and what is derived from them.

* :mod:`ddpayne.physics.synthesizer` — the Synthesizer interface (implemented by the ``moog`` plugin);
* :mod:`ddpayne.physics.airvac` — air ↔ vacuum wavelengths (Morton 2000);
* :mod:`ddpayne.physics.degrade` — instrument degradation shared with the data path;
* :mod:`ddpayne.physics.gradients` — the gradient-spectra container and file format
  (:class:`~ddpayne.physics.gradients.GradientSpectra`);
* :mod:`ddpayne.physics.references` — reference label points and finite-difference steps;
* :mod:`ddpayne.physics.runner` — the resumable background synthesis;
* :mod:`ddpayne.physics.build_gradients` — assembly of the gradient product.
"""
