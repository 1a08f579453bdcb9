document.getElementById("app")!.textContent = "MedSAM2 annotation";
