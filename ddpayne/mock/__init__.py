"""Mock data for tests, the demo and validation.

* :mod:`ddpayne.mock.library` — label distribution (:func:`~ddpayne.mock.library.draw_labels`) and the
  noiseless synthetic spectral library (:class:`~ddpayne.mock.library.MockLibrary`);
* :mod:`ddpayne.mock.survey` — real-layout DESI coadd files, an mwsall-like catalogue and a reference-label
  catalogue from the library (:func:`~ddpayne.mock.survey.make_mock_survey`);
* :mod:`ddpayne.mock.galaxy` — positions, kinematics, dust and Gaia/2MASS observables.
"""
